//! Rebuilds the CLI when a file it embeds changes (include_dir! cannot
//! tell cargo about files added to an embedded directory).

fn main() {
    for path in [
        "templates",
        "../../wit",
        "../../sdk-python/wactor",
        "../../sdk-js/src",
        "../../sdk-js/testing",
        "../../sdk-js/package.json",
    ] {
        println!("cargo:rerun-if-changed={path}");
    }
}
