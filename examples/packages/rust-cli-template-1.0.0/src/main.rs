//! {{name}}: the entry point of the generated command-line tool.

fn main() {
    println!("Hello from {{name}}");
}
