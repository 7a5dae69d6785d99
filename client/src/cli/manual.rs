//! The manual page (roff), made from the clap definitions: clap_mangen's
//! page of the whole command, then a section per command with its own
//! options, so that `man dockstack` documents `logs -f` as well as `-f`.

use std::io::Write;

use clap::CommandFactory;

use super::args::Cli;

/// A roff text line: backslashes and dashes escaped, and a leading dot or
/// quote kept from being read as a request.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// The whole page.
pub fn render(out: &mut impl Write) -> std::io::Result<()> {
    let command = Cli::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut page)?;
    out.write_all(&page)?;
    writeln!(out, ".SH \"COMMANDS IN DETAIL\"")?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        writeln!(out, ".SS \"{}\"", sub.get_name())?;
        if let Some(about) = sub.get_long_about().or(sub.get_about()) {
            writeln!(out, "{}", roff(&about.to_string()))?;
        }
        let own = sub
            .get_arguments()
            .filter(|a| !a.is_global_set() && !a.is_hide_set() && a.get_id() != "help");
        for arg in own {
            let mut names = Vec::new();
            if let Some(s) = arg.get_short() {
                names.push(format!("-{s}"));
            }
            if let Some(l) = arg.get_long() {
                names.push(format!("--{l}"));
            }
            let mut head = if names.is_empty() {
                format!("{}...", arg.get_id().as_str().to_uppercase())
            } else {
                names.join(", ")
            };
            if arg.get_action().takes_values() && !names.is_empty() {
                let value = arg
                    .get_value_names()
                    .and_then(|v| v.first())
                    .map_or_else(|| arg.get_id().as_str().to_uppercase(), ToString::to_string);
                head = format!("{head} {value}");
            }
            writeln!(out, ".TP\n\\fB{}\\fR", roff(&head))?;
            if let Some(help) = arg.get_long_help().or(arg.get_help()) {
                writeln!(out, "{}", roff(&help.to_string()))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_a_section_with_its_options() {
        let mut page = Vec::new();
        render(&mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(
            page.starts_with(".ie") || page.contains(".TH dockstack 1"),
            "{page}"
        );
        for section in [
            ".SS \"logs\"",
            ".SS \"exec\"",
            ".SS \"events\"",
            ".SS \"status\"",
        ] {
            assert!(page.contains(section), "{section} in {page}");
        }
        for option in [
            "\\fB\\-\\-follow\\fR",
            "\\fB\\-\\-since TIME\\fR",
            "\\fB\\-\\-tail N\\fR",
            "\\fB\\-i, \\-\\-interactive\\fR",
            "\\fB\\-t, \\-\\-tty\\fR",
            "\\fB\\-\\-watch\\fR",
        ] {
            assert!(page.contains(option), "{option} in {page}");
        }
    }

    #[test]
    fn roff_text_cannot_start_a_request() {
        assert_eq!(roff(".SH x"), "\\&.SH x");
        assert_eq!(roff("a-b \\ c"), "a\\-b \\e c");
    }
}
