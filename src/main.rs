//! The enrollgate command line.
fn main() {}
