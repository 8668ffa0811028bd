//! Eligibility rules for Fedora CI: pure functions answering "run" or "skip, because ...".
//! The rules arrive with the flows issue.
