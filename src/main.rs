//! The `mailmfa` command (placeholder until the command lands).

fn main() {
    eprintln!("mailmfa: the command is not built yet");
    std::process::exit(2);
}
