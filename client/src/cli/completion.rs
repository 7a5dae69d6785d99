//! Shell completions (clap's, for every command and option) with the
//! container names of the environment file as the values of `-c`: each
//! shell's script asks `dockstack complete-containers`, with the `-f` of
//! the command line being completed, when the names are wanted.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;

use super::args::Cli;

/// The names of the file's containers, one a line, for the completions; an
/// unreadable file gives none (a completion prints no error).
pub fn containers(cli: &Cli) {
    if let Ok(env) = dockstack::environment::load(&cli.file) {
        let mut out = std::io::stdout().lock();
        for c in &env.containers {
            if writeln!(out, "{}", c.name).is_err() {
                return;
            }
        }
    }
}

const BASH_NAMES: &str = r#"
# Container names for -c, from the file of the command line's -f.
_dockstack_containers() {
    local file=environment.yaml i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            -f|--file) file="${COMP_WORDS[i+1]}" ;;
        esac
    done
    dockstack -f "$file" complete-containers 2>/dev/null
}
"#;

const ZSH_NAMES: &str = r#"
# Container names for -c, from the file of the command line's -f.
_dockstack_containers() {
    local file=${opt_args[-f]:-${opt_args[--file]:-environment.yaml}}
    local -a names
    names=(${(f)"$(dockstack -f "$file" complete-containers 2>/dev/null)"})
    _describe -t containers 'container' names
}
"#;

const FISH_NAMES: &str = r#"
# Container names for -c, from the file of the command line's -f.
function __fish_dockstack_containers
    set -l file environment.yaml
    set -l tokens (commandline -opc)
    for i in (seq (count $tokens))
        if contains -- $tokens[$i] -f --file; and test $i -lt (count $tokens)
            set file $tokens[(math $i + 1)]
        end
    end
    dockstack -f $file complete-containers 2>/dev/null
end
"#;

/// The completion script of `shell`.
pub fn script(shell: Shell) -> String {
    let mut generated = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "dockstack", &mut generated);
    let generated = String::from_utf8_lossy(&generated).into_owned();
    match shell {
        Shell::Bash => bash(&generated),
        Shell::Zsh => zsh(&generated),
        Shell::Fish => fish(&generated),
        _ => generated,
    }
}

/// clap's bash script completes `-c` with file names: the file's
/// container names instead.
fn bash(generated: &str) -> String {
    let mut out = String::from(BASH_NAMES);
    let mut container_case = false;
    for line in generated.lines() {
        let trimmed = line.trim();
        if container_case && trimmed == r#"COMPREPLY=($(compgen -f "${cur}"))"# {
            out.push_str(&line.replace(
                r#"compgen -f "${cur}""#,
                r#"compgen -W "$(_dockstack_containers)" -- "${cur}""#,
            ));
        } else {
            out.push_str(line);
        }
        out.push('\n');
        container_case = matches!(trimmed, "--container)" | "-c)");
    }
    out
}

fn zsh(generated: &str) -> String {
    let body = generated.replace(":CONTAINER:_default'", ":CONTAINER:_dockstack_containers'");
    match body.split_once('\n') {
        // After `#compdef`, which must stay the first line.
        Some((first, rest)) => format!("{first}\n{ZSH_NAMES}{rest}"),
        None => body,
    }
}

fn fish(generated: &str) -> String {
    let mut out = String::from(FISH_NAMES);
    for line in generated.lines() {
        if line.contains("-s c -l container") {
            out.push_str(&line.replace(" -r", " -r -f -a '(__fish_dockstack_containers)'"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_shell_completes_c_with_the_files_container_names() {
        let bash = script(Shell::Bash);
        assert!(bash.contains("_dockstack()"), "{bash}");
        let hooked = bash
            .matches(r#"compgen -W "$(_dockstack_containers)""#)
            .count();
        // -c and --container, at the top and under every command.
        assert!(hooked >= 2 * 20, "{hooked} hooks in {bash}");
        let zsh = script(Shell::Zsh);
        assert!(zsh.starts_with("#compdef dockstack\n"), "{zsh}");
        assert!(zsh.contains(":CONTAINER:_dockstack_containers'"), "{zsh}");
        assert!(!zsh.contains(":CONTAINER:_default'"), "{zsh}");
        let fish = script(Shell::Fish);
        assert!(fish.contains("-l container -d"), "{fish}");
        assert!(fish.contains("(__fish_dockstack_containers)"), "{fish}");
        for new in ["logs", "exec", "events"] {
            for s in [&bash, &zsh, &fish] {
                assert!(s.contains(new), "{new} in {s}");
            }
        }
    }
}
