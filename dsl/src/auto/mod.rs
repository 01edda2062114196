//! Schedules texpr chooses itself, above lowering: the class defaults
//! today (`defaults.rs`); schedule search attaches here.

mod defaults;
