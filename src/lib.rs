//! enrollgate: a certificate enrollment gateway.
