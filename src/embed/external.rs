//! The files an ONNX graph keeps its weights in ("external data"): big graphs (M-CLIP's
//! XLM-R text tower, ViT-H and ViT-g) store each tensor, or all of them, in files
//! beside `model.onnx`, named by the tensors' `external_data` `location` entries. A
//! package must carry every one of them, so import copies them, pull fetches them and
//! loading checks them before ONNX Runtime reads the graph.
//!
//! The graph is read as raw protobuf (the fields of `onnx.proto` that can hold tensors:
//! initializers, sparse initializers, node attributes, subgraphs), skipping tensor data
//! without reading it, so a graph with a gigabyte of embedded weights costs a few seeks.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::EmbedError;

/// The external-data file names `graph` refers to, relative to its folder, sorted.
pub fn external_data_files(graph: &Path) -> Result<Vec<String>, EmbedError> {
    let bad = |reason: String| EmbedError::Graph {
        path: graph.to_path_buf(),
        reason,
    };
    let f = File::open(graph).map_err(|e| bad(format!("cannot read it ({e})")))?;
    let len = f.metadata().map_err(|e| bad(format!("cannot read it ({e})")))?.len();
    let mut pb = Pb {
        r: BufReader::with_capacity(64 * 1024, f),
        pos: 0,
        found: BTreeSet::new(),
    };
    pb.model(len)
        .map_err(|e| bad(format!("not a readable ONNX graph ({e}); re-download or re-export it")))?;
    let files: Vec<String> = pb.found.into_iter().collect();
    for f in &files {
        // Locations are relative to the graph's folder and may not leave it.
        if f.is_empty() || Path::new(f).is_absolute() || f.split(['/', '\\']).any(|c| c == "..") {
            return Err(bad(format!("names an external data file outside its folder: {f:?}")));
        }
    }
    Ok(files)
}

const MAX_DEPTH: usize = 16;

struct Pb<R> {
    r: R,
    pos: u64,
    found: BTreeSet<String>,
}

type Res<T> = Result<T, String>;

impl<R: Read + Seek> Pb<R> {
    fn byte(&mut self) -> Res<u8> {
        let mut b = [0u8; 1];
        self.r.read_exact(&mut b).map_err(|e| e.to_string())?;
        self.pos += 1;
        Ok(b[0])
    }

    fn varint(&mut self) -> Res<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("a varint longer than 10 bytes".into())
    }

    fn skip(&mut self, n: u64) -> Res<()> {
        self.r.seek(SeekFrom::Current(n as i64)).map_err(|e| e.to_string())?;
        self.pos += n;
        Ok(())
    }

    fn string(&mut self, n: u64) -> Res<String> {
        if n > 4096 {
            return Err(format!("a name of {n} bytes"));
        }
        let mut b = vec![0u8; n as usize];
        self.r.read_exact(&mut b).map_err(|e| e.to_string())?;
        self.pos += n;
        String::from_utf8(b).map_err(|_| "a name that is not UTF-8".into())
    }

    /// Walks the fields of a message ending at `end`, handing length-delimited fields to
    /// `on_len(self, field, field_end)`; everything else is skipped.
    fn fields(&mut self, end: u64, mut on_len: impl FnMut(&mut Self, u64, u64) -> Res<bool>) -> Res<()> {
        while self.pos < end {
            let key = self.varint()?;
            let (field, wire) = (key >> 3, key & 7);
            match wire {
                0 => {
                    self.varint()?;
                }
                1 => self.skip(8)?,
                5 => self.skip(4)?,
                2 => {
                    let n = self.varint()?;
                    let field_end = self
                        .pos
                        .checked_add(n)
                        .filter(|e| *e <= end)
                        .ok_or("a field runs past its message")?;
                    let start = self.pos;
                    if !on_len(self, field, field_end)? {
                        self.skip(field_end - start)?;
                    } else if self.pos != field_end {
                        return Err("a message does not end where its length says".into());
                    }
                }
                other => return Err(format!("wire type {other}")),
            }
        }
        if self.pos != end {
            return Err("a message runs past its length".into());
        }
        Ok(())
    }

    /// ModelProto: graph = 7.
    fn model(&mut self, end: u64) -> Res<()> {
        self.fields(
            end,
            |p, f, e| if f == 7 { p.graph(e, 0).map(|_| true) } else { Ok(false) },
        )
    }

    /// GraphProto: node = 1, initializer = 5, sparse_initializer = 15.
    fn graph(&mut self, end: u64, depth: usize) -> Res<()> {
        if depth > MAX_DEPTH {
            return Err("subgraphs nested too deeply".into());
        }
        self.fields(end, |p, f, e| match f {
            1 => p.node(e, depth).map(|_| true),
            5 => p.tensor(e).map(|_| true),
            15 => p.sparse(e).map(|_| true),
            _ => Ok(false),
        })
    }

    /// NodeProto: attribute = 5.
    fn node(&mut self, end: u64, depth: usize) -> Res<()> {
        self.fields(end, |p, f, e| {
            if f == 5 {
                p.attribute(e, depth).map(|_| true)
            } else {
                Ok(false)
            }
        })
    }

    /// AttributeProto: t = 5, g = 6, tensors = 10, graphs = 11.
    fn attribute(&mut self, end: u64, depth: usize) -> Res<()> {
        self.fields(end, |p, f, e| match f {
            5 | 10 => p.tensor(e).map(|_| true),
            6 | 11 => p.graph(e, depth + 1).map(|_| true),
            _ => Ok(false),
        })
    }

    /// SparseTensorProto: values = 1, indices = 2.
    fn sparse(&mut self, end: u64) -> Res<()> {
        self.fields(end, |p, f, e| {
            if f == 1 || f == 2 {
                p.tensor(e).map(|_| true)
            } else {
                Ok(false)
            }
        })
    }

    /// TensorProto: external_data = 13 (StringStringEntryProto: key = 1, value = 2).
    fn tensor(&mut self, end: u64) -> Res<()> {
        self.fields(end, |p, f, e| {
            if f != 13 {
                return Ok(false);
            }
            let (mut key, mut value) = (String::new(), String::new());
            p.fields(e, |p, f, fe| match f {
                1 => {
                    key = p.string(fe - p.pos)?;
                    Ok(true)
                }
                2 => {
                    value = p.string(fe - p.pos)?;
                    Ok(true)
                }
                _ => Ok(false),
            })?;
            if key == "location" {
                p.found.insert(value);
            }
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn len_field(field: u64, body: &[u8], out: &mut Vec<u8>) {
        varint(field << 3 | 2, out);
        varint(body.len() as u64, out);
        out.extend_from_slice(body);
    }

    fn tensor(location: Option<&str>, raw: usize) -> Vec<u8> {
        let mut t = Vec::new();
        len_field(8, b"weight", &mut t); // name
        varint(2 << 3, &mut t); // data_type = 1 (a varint field)
        varint(1, &mut t);
        len_field(9, &vec![7u8; raw], &mut t); // raw_data, skipped unread
        if let Some(loc) = location {
            let mut entry = Vec::new();
            len_field(1, b"location", &mut entry);
            len_field(2, loc.as_bytes(), &mut entry);
            len_field(13, &entry, &mut t);
            let mut other = Vec::new();
            len_field(1, b"offset", &mut other);
            len_field(2, b"0", &mut other);
            len_field(13, &other, &mut t);
        }
        t
    }

    #[test]
    fn finds_external_files_of_initializers_and_constant_nodes() {
        let mut graph = Vec::new();
        len_field(5, &tensor(Some("weights/a.bin"), 3), &mut graph);
        len_field(5, &tensor(None, 100_000), &mut graph);
        len_field(5, &tensor(Some("b.bin"), 0), &mut graph);
        // A Constant node whose value tensor is external.
        let mut attr = Vec::new();
        len_field(1, b"value", &mut attr);
        len_field(5, &tensor(Some("const.bin"), 0), &mut attr);
        let mut node = Vec::new();
        len_field(4, b"Constant", &mut node);
        len_field(5, &attr, &mut node);
        len_field(1, &node, &mut graph);
        let mut model = Vec::new();
        varint(1 << 3, &mut model); // ir_version
        varint(9, &mut model);
        len_field(7, &graph, &mut model);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("model.onnx");
        std::fs::write(&p, &model).unwrap();
        assert_eq!(
            external_data_files(&p).unwrap(),
            ["b.bin", "const.bin", "weights/a.bin"]
        );

        // Truncated: an error naming the file, not a panic.
        std::fs::write(&p, &model[..model.len() - 5]).unwrap();
        let e = external_data_files(&p).unwrap_err().to_string();
        assert!(
            e.contains("model.onnx") && e.contains("not a readable ONNX graph"),
            "{e}"
        );
    }

    #[test]
    fn a_location_outside_the_folder_is_refused() {
        let mut graph = Vec::new();
        len_field(5, &tensor(Some("../../etc/passwd"), 0), &mut graph);
        let mut model = Vec::new();
        len_field(7, &graph, &mut model);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("model.onnx");
        std::fs::write(&p, &model).unwrap();
        assert!(
            external_data_files(&p)
                .unwrap_err()
                .to_string()
                .contains("outside its folder")
        );
    }
}
