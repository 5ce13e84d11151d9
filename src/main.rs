fn main() {
    // a Tab in the shell: candidates printed, nothing else read or changed
    edge_setup::commands::completions::answer_tab();
    // before anything reads the environment, and while this is the only thread
    edge_setup::system::environ::restrict_own();
    std::process::exit(edge_setup::app::run(edge_setup::app::Process::from_os()));
}
