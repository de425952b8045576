//! Tests of the raw switch.
