//! Synthetic labelled image sets (`edgebench data synth`). Being written.
