//! Rendering a [`Report`](crate::bench::result::Report): terminal table, JSON, CSV,
//! Markdown and a self-contained HTML page with SVG charts. Placeholder: being written.
