//! SCEP load generator (being written).

fn main() {}
