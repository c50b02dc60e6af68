//! The batch runner's reply (`unframe`: exits line, `wc -c` sizes, concatenated bytes) and
//! each frame's `Output`. Two modes, by the first byte: raw bytes from a hostile machine, or
//! frames laid out as the batch script prints them. Properties: no panic; a reply unframes
//! only into exactly `n` frames whose bytes come from the reply; frames printed as the script
//! prints them unframe to themselves; a command is reported exit 0 only when its shell said 0.
#![no_main]

use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use clan_coordination::transport::batch::{unframe, Frame};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Framed {
    frames: Vec<(Option<i32>, Vec<u8>, Vec<u8>)>,
    /// GNU wc pads sizes with spaces.
    pad: bool,
}

fn reply(f: &Framed) -> Vec<u8> {
    let exits: String = f
        .frames
        .iter()
        .map(|(x, _, _)| x.map_or(" -".to_string(), |x| format!(" {x}")))
        .collect();
    let mut out = format!("@@{exits}\n").into_bytes();
    let pad = if f.pad { "      " } else { "" };
    let mut total = 0;
    for (i, (_, o, e)) in f.frames.iter().enumerate() {
        out.extend(
            format!(
                "{pad}{} /tmp/d/{i}.o\n{pad}{} /tmp/d/{i}.e\n",
                o.len(),
                e.len()
            )
            .bytes(),
        );
        total += o.len() + e.len();
    }
    out.extend(format!("{pad}{total} total\n").bytes());
    for (_, o, e) in &f.frames {
        out.extend(o);
        out.extend(e);
    }
    out
}

fn check_output(frame: Frame, secs: u8) {
    let status = frame.status;
    let (_, o) = frame.output(Duration::from_secs(u64::from(secs)), Duration::from_secs(5));
    if o.exit == Some(0) {
        assert_eq!(status, Some(0), "reported success the shell did not report");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let n = usize::from(mode / 2 % 16);
        if let Some(frames) = unframe(rest, n) {
            assert_eq!(frames.len(), n);
            let bytes: usize = frames.iter().map(|f| f.stdout.len() + f.stderr.len()).sum();
            assert!(bytes <= rest.len());
            for f in frames {
                check_output(f, mode);
            }
        }
    } else {
        let Ok(f) = Framed::arbitrary_take_rest(Unstructured::new(rest)) else {
            return;
        };
        let got = unframe(&reply(&f), f.frames.len()).expect("a well-formed reply unframes");
        let want: Vec<Frame> = f
            .frames
            .iter()
            .map(|(status, stdout, stderr)| Frame {
                status: *status,
                stdout: stdout.clone(),
                stderr: stderr.clone(),
            })
            .collect();
        assert_eq!(got, want);
        for frame in got {
            check_output(frame, mode);
        }
    }
});
