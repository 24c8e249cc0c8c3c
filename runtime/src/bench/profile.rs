//! Per-node time of one model (`edgebench profile`). Placeholder: being written.
