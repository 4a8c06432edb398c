use demarc_model::Origin;
use demarc_normalize::{Normalizer, Options};
fn main() {
    let mut g = demarc_synth::CloudTrailGenerator::new(42);
    let files: Vec<Vec<u8>> = (0..100).map(|i| g.records_file(100 + i % 5 * 50)).collect();
    let raw = std::env::args().nth(1).as_deref() == Some("raw");
    let opts = Options {
        keep_raw: raw,
        ..Options::default()
    };
    let t = std::time::Instant::now();
    let mut rows = 0;
    for _ in 0..20 {
        let mut n = Normalizer::new(opts.clone());
        for f in &files {
            n.push(f, &Origin::file("x"));
            if n.pending_rows() >= 8192 {
                rows += n.take_batch().map_or(0, |b| b.num_rows());
            }
        }
        rows += n.take_batch().map_or(0, |b| b.num_rows());
    }
    let s = t.elapsed().as_secs_f64();
    println!("{rows} rows, {:.0} events/s", rows as f64 / s);
}
