use twat_mp::apmap;

#[apmap(nodes = 2, chunksize = 64)]
async fn word_count(line: String) -> usize {
    line.split_whitespace().count()
}

fn main() {
    let _ = word_count(vec!["a b".to_string()]);
}
