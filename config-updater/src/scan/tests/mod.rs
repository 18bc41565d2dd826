//! Unit tests of the scanner's pure parts (and of the retry loop with fake operations).

mod config_auth;
mod faults;
mod http;
mod paging;
