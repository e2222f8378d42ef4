//! Reading a CTranslate2 `model.bin` (the faster-whisper layout): the binary version,
//! the spec's name and revision, then every variable (name, shape, data type, bytes) and
//! the aliases (a name that shares another variable's data, e.g. the output projection
//! tied to the token embedding). The format is CTranslate2's own serialiser
//! (`ctranslate2/specs/model_spec.py`, `_serialize`): little-endian, strings as a
//! `u16` length (with the NUL) and the bytes. Owns only the parsing and turning a
//! variable's values into `f32`; which variable is which Whisper tensor is `ggml`'s.

use std::collections::HashMap;
use std::path::Path;

use super::SpeechError;

/// A variable's element type, in CTranslate2's `DataType` order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    Bf16,
}

impl DType {
    fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::Bf16,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 | DType::Bf16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }
}

/// One stored variable.
#[derive(Clone, Debug)]
pub struct Var {
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub data: Vec<u8>,
}

impl Var {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// The values as `f32` (integers as they are: a quantised weight is scaled by the
    /// caller with its `_scale` variable).
    pub fn to_f32(&self) -> Vec<f32> {
        let d = &self.data;
        match self.dtype {
            DType::F32 => d
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::F16 => d
                .chunks_exact(2)
                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            DType::Bf16 => d
                .chunks_exact(2)
                .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
                .collect(),
            DType::I8 => d.iter().map(|&b| b as i8 as f32).collect(),
            DType::I16 => d
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]) as f32)
                .collect(),
            DType::I32 => d
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
                .collect(),
        }
    }

    /// A scalar integer (a head count, a flag).
    pub fn scalar(&self) -> Option<i64> {
        (self.len() == 1 && matches!(self.dtype, DType::I8 | DType::I16 | DType::I32)).then(|| self.to_f32()[0] as i64)
    }
}

/// A parsed `model.bin`.
#[derive(Debug)]
pub struct Ct2Model {
    /// The spec's name, e.g. `WhisperSpec`.
    pub spec: String,
    pub vars: HashMap<String, Var>,
}

impl Ct2Model {
    /// The variable `name`, through an alias when it is one.
    pub fn get(&self, name: &str) -> Option<&Var> {
        self.vars.get(name)
    }

    /// Reads `path`.
    pub fn read(path: &Path) -> Result<Self, SpeechError> {
        let bytes = std::fs::read(path).map_err(|e| SpeechError::NotAModel {
            dir: path.to_path_buf(),
            reason: format!("cannot read it ({e})"),
        })?;
        Self::parse(&bytes).map_err(|reason| SpeechError::NotAModel {
            dir: path.to_path_buf(),
            reason: format!("not a CTranslate2 model.bin: {reason}"),
        })
    }

    /// Parses the bytes of a `model.bin`.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader { b: bytes, at: 0 };
        let version = r.u32()?;
        if !(3..=6).contains(&version) {
            return Err(format!("binary version {version} (known: 3 to 6)"));
        }
        let spec = r.string()?;
        let _revision = r.u32()?;
        let n = r.u32()? as usize;
        let mut vars = HashMap::with_capacity(n);
        for _ in 0..n {
            let name = r.string()?;
            let rank = r.u8()? as usize;
            let shape = (0..rank)
                .map(|_| r.u32().map(|d| d as usize))
                .collect::<Result<Vec<_>, _>>()?;
            let id = r.u8()?;
            let dtype = DType::from_id(id).ok_or_else(|| format!("{name}: unknown data type {id}"))?;
            let nbytes = r.u32()? as usize;
            if nbytes != shape.iter().product::<usize>() * dtype.size() {
                return Err(format!("{name}: {nbytes} bytes for shape {shape:?}"));
            }
            let data = r.take(nbytes)?.to_vec();
            vars.insert(name, Var { shape, dtype, data });
        }
        let aliases = r.u32()? as usize;
        for _ in 0..aliases {
            let alias = r.string()?;
            let target = r.string()?;
            let v = vars
                .get(&target)
                .cloned()
                .ok_or_else(|| format!("alias {alias} of unknown {target}"))?;
            vars.insert(alias, v);
        }
        Ok(Self { spec, vars })
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or("the file ends too early")?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn string(&mut self) -> Result<String, String> {
        let s = self.take(2)?;
        let n = u16::from_le_bytes([s[0], s[1]]) as usize;
        let s = self.take(n)?;
        let s = s.strip_suffix(&[0]).unwrap_or(s);
        String::from_utf8(s.to_vec()).map_err(|_| "a name that is not UTF-8".to_string())
    }
}

/// IEEE half to single precision.
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // subnormal: normalise
            let mut e = 113u32; // 127 - 15 + 1
            let mut m = m;
            while m & 0x400 == 0 {
                m <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((m & 0x3ff) << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// Single to half precision, rounding to nearest even.
pub fn f32_to_f16(f: f32) -> u16 {
    let x = f.to_bits();
    let sign = ((x >> 16) & 0x8000) as u16;
    let exp = ((x >> 23) & 0xff) as i32;
    let man = x & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        let m = man | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = 1u32 << (shift - 1);
        let rest = m & ((1 << shift) - 1);
        let mut v = m >> shift;
        if rest > half || (rest == half && v & 1 == 1) {
            v += 1;
        }
        return sign | v as u16;
    }
    let mut v = ((e as u32) << 10) | (man >> 13);
    let rest = man & 0x1fff;
    if rest > 0x1000 || (rest == 0x1000 && v & 1 == 1) {
        v += 1; // may carry into the exponent, which is right
    }
    sign | v as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_round_trip_and_round_to_nearest_even() {
        for h in (0u16..=0xffff).step_by(7) {
            let f = f16_to_f32(h);
            if f.is_nan() {
                continue;
            }
            assert_eq!(f32_to_f16(f), h, "{h:#x} -> {f}");
        }
        assert_eq!(f32_to_f16(1.0 + 1.0 / 4096.0), 0x3c00); // halfway: even
        assert_eq!(f32_to_f16(65520.0), 0x7c00);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
    }

    #[test]
    fn a_truncated_file_is_refused() {
        let mut b = 6u32.to_le_bytes().to_vec();
        b.extend_from_slice(&12u16.to_le_bytes());
        b.extend_from_slice(b"WhisperSpec\0");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        assert!(Ct2Model::parse(&b).unwrap_err().contains("ends too early"));
        assert!(
            Ct2Model::parse(b"\x63\0\0\0")
                .unwrap_err()
                .contains("binary version 99")
        );
    }
}
