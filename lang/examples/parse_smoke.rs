fn main() {
    for path in std::env::args().skip(1) {
        let src = std::fs::read_to_string(&path).unwrap_or_default();
        match naas_lang::parse(&src) {
            Ok(m) => println!("{path}: ok, {} items", m.items.len()),
            Err(ds) => { for d in ds { println!("{path}: {}", naas_lang::diagnostics::render::render_text(&d, &path, &src, false)); } }
        }
    }
}
