//! Reusable view pieces.

pub(crate) mod banner;
pub(crate) mod form;
pub(crate) mod link;
pub(crate) mod message;
pub(crate) mod packet_table;
pub(crate) mod table;
