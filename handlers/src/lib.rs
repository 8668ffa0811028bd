//! The Fedora CI flows of SPEC §2: a recorded event in, decisions and jobs out.
//! The flows arrive with the flows issue; the inbox they read is in `store`.
