fn main() {
    // before anything reads the environment, and while this is the only thread
    edge_setup::system::environ::restrict_own();
    std::process::exit(edge_setup::app::run(edge_setup::app::Process::from_os()));
}
