pub mod client;
pub mod constants;
mod generated;
pub mod protocol;
pub mod read_buffer;
pub mod server;
pub mod testing;
