//! Rate limiter (being written).
