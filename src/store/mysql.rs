//! The mysql store (in progress).
