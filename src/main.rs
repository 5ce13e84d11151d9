fn main() {
    std::process::exit(edge_setup::app::run(edge_setup::app::Process::from_os()));
}
