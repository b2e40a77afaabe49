//! One module per page.

pub(crate) mod home;
pub(crate) mod migrations;
pub(crate) mod not_found;
pub(crate) mod observers;
pub(crate) mod packets;
