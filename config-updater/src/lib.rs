//! The Config Updater's pure core: it decides which tag each image policy allows, where the config
//! repository names those images, and exactly which bytes change. The daemon (`main.rs`) executes
//! those decisions against registries and git.

pub mod controller;
pub mod dryrun;
pub mod edit;
pub mod policy;
pub mod resource;
pub mod scan;
pub mod schedule;
pub mod webhook;
pub mod writeback;
