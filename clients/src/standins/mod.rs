//! Local stand-ins for the external services, following their real API
//! contracts (SPEC §3), including their error responses, and scriptable by
//! tests (fail the next N calls, answer 429 with `Retry-After`, ...). Each
//! records the calls it received.

pub mod distgit;
pub mod eln;
pub mod fas;
pub mod kerberos;
pub mod koji;
pub mod testing_farm;
pub mod tls;
