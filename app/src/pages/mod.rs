//! One module per page.

pub(crate) mod home;
pub(crate) mod live;
pub(crate) mod map;
pub(crate) mod migrations;
pub(crate) mod node;
pub(crate) mod nodes;
pub(crate) mod not_found;
pub(crate) mod observers;
pub(crate) mod packet;
pub(crate) mod packets;
pub(crate) mod route;
