//! Text to token ids: for CLIP's tokenizer equal to OpenAI's `clip.tokenize(text,
//! truncate=True)` without the padding; for other tokenizers (XLM-RoBERTa's unigram,
//! SigLIP's sentencepiece) what the model's own tokenizer gives, with the clean-up its
//! training used (`text.clean`) and its own special tokens (`text.start_id`, `end_id`).
//!
//! OpenAI's tokenizer first runs `basic_clean` (`ftfy.fix_text`, then `html.unescape`
//! twice, strip) and `whitespace_clean`; the Hugging Face `tokenizer.json` only
//! lower-cases, NFC-normalises and collapses whitespace, so that clean-up happens here.
//! Of ftfy's fixes, the ones that change well-formed text are reproduced (straight
//! quotes, full-width ASCII, Latin ligatures, control characters, terminal escapes, line
//! breaks). Its mojibake repair (re-decoding text that was decoded with the wrong
//! encoding) is not: a search box sends well-formed UTF-8.

use std::path::Path;

use tokenizers::Tokenizer;

use super::EmbedError;
use super::manifest::{TextClean, TextSpec};

/// A model's tokenizer with its special tokens and clean-up.
pub struct TextTokenizer {
    inner: Tokenizer,
    spec: TextSpec,
}

impl TextTokenizer {
    /// Loads `tokenizer.json` for the text settings `spec`.
    pub fn load(path: &Path, spec: &TextSpec) -> Result<Self, EmbedError> {
        let inner = Tokenizer::from_file(path).map_err(|e| EmbedError::Tokenizer {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            inner,
            spec: spec.clone(),
        })
    }

    /// `[start] + tokens(clean(text)) + [end]` (no start when the model has none),
    /// truncated to the context length keeping the end token.
    pub fn ids(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        let cleaned = clean_as(self.spec.clean, text);
        let enc = self
            .inner
            .encode(cleaned.as_str(), false)
            .map_err(|e| EmbedError::Inference {
                what: "tokenizing text",
                reason: e.to_string(),
            })?;
        let max = self.spec.context_length;
        let specials = 1 + self.spec.start_id.is_some() as usize;
        let mut ids = Vec::with_capacity(max.min(enc.len() + specials));
        ids.extend(self.spec.start_id);
        ids.extend(enc.get_ids().iter().copied().take(max.saturating_sub(specials)));
        ids.push(self.spec.end_id);
        Ok(ids)
    }

    /// The id of a token of the vocabulary (added tokens included).
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}

/// What a tokenizer says about its special tokens, read from the tokenizer itself: the
/// tokens its post-processor puts around a text, and the pad token of the
/// `tokenizer_config.json` beside it. Never guessed from another model's ids.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TokenizerFacts {
    pub start_id: Option<u32>,
    pub end_id: u32,
    /// None when neither file names a pad token.
    pub pad_id: Option<u32>,
    /// The tokenization model: "BPE", "Unigram", "WordPiece", "WordLevel".
    pub model: String,
    pub vocab_size: usize,
}

/// Reads [`TokenizerFacts`] from `tokenizer.json` (and `tokenizer_config.json` when given).
pub fn tokenizer_facts(path: &Path, config: Option<&Path>) -> Result<TokenizerFacts, EmbedError> {
    let bad = |reason: String| EmbedError::Tokenizer {
        path: path.to_path_buf(),
        reason,
    };
    let mut tok = Tokenizer::from_file(path).map_err(|e| bad(e.to_string()))?;
    tok.with_padding(None);
    tok.with_truncation(None).map_err(|e| bad(e.to_string()))?;
    let cfg: Option<serde_json::Value> = match config.filter(|c| c.is_file()) {
        Some(c) => Some(
            std::fs::read_to_string(c)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .ok_or_else(|| bad(format!("{} is not valid JSON", c.display())))?,
        ),
        None => None,
    };
    // A config token is a string or {"content": "..."}.
    let cfg_token = |key: &str| -> Option<u32> {
        let v = cfg.as_ref()?.get(key)?;
        let s = v.as_str().or_else(|| v.get("content").and_then(|c| c.as_str()))?;
        tok.token_to_id(s)
    };
    let enc = |special: bool| -> Result<Vec<u32>, EmbedError> {
        tok.encode("a", special)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| bad(e.to_string()))
    };
    let (plain, full) = (enc(false)?, enc(true)?);
    let at = full
        .windows(plain.len().max(1))
        .position(|w| w == plain.as_slice())
        .ok_or_else(|| bad("its post-processor changes the text's own tokens".into()))?;
    let (before, after) = (&full[..at], &full[at + plain.len()..]);
    if before.len() > 1 || after.len() > 1 {
        return Err(bad(format!(
            "its post-processor adds {} token(s) before and {} after a text; vidseek supports at most one each",
            before.len(),
            after.len()
        )));
    }
    let (start_id, end_id) = match (before.first(), after.first()) {
        (s, Some(e)) => (s.copied(), *e),
        // No post-processor: the config's names, as transformers would add them.
        (None, None) => {
            let end = cfg_token("eos_token").ok_or_else(|| {
                bad("it adds no end token and no tokenizer_config.json beside it names one (eos_token)".into())
            })?;
            let add_bos = cfg
                .as_ref()
                .and_then(|c| c.get("add_bos_token"))
                .and_then(|v| v.as_bool());
            (
                if add_bos == Some(false) {
                    None
                } else {
                    cfg_token("bos_token")
                },
                end,
            )
        }
        (Some(_), None) => return Err(bad("its post-processor adds a start token but no end token".into())),
    };
    let pad_id = cfg_token("pad_token").or_else(|| tok.get_padding().map(|p| p.pad_id));
    let model = serde_json::to_value(tok.get_model())
        .ok()
        .and_then(|m| m.get("type").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    Ok(TokenizerFacts {
        start_id,
        end_id,
        pad_id,
        model,
        vocab_size: tok.get_vocab_size(true),
    })
}

/// The clean-up `mode` applied to `text`.
pub fn clean_as(mode: TextClean, text: &str) -> String {
    match mode {
        TextClean::Whitespace => clean(text),
        TextClean::Lower => clean(text).to_lowercase(),
        TextClean::Canonicalize => canonicalize(&clean(text)),
        TextClean::None => text.trim().to_string(),
    }
}

/// open_clip's `canonicalize_text` (from big_vision): underscores become spaces, ASCII
/// punctuation is removed, the text is lower-cased and its whitespace collapsed.
pub fn canonicalize(text: &str) -> String {
    let kept: String = text
        .replace('_', " ")
        .chars()
        .filter(|c| !c.is_ascii_punctuation())
        .collect();
    kept.to_lowercase().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `whitespace_clean(basic_clean(text))`.
pub fn clean(text: &str) -> String {
    // ftfy unescapes HTML itself unless the text looks like HTML (has a '<').
    let text = if text.contains('<') {
        text.to_string()
    } else {
        html_unescape(text)
    };
    let fixed = ftfy_fixes(&text);
    let once = html_unescape(&fixed);
    let twice = html_unescape(&once);
    twice.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The parts of `ftfy.fix_text` (ftfy 6 defaults) that alter well-formed text.
pub fn ftfy_fixes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // remove_terminal_escapes: ESC [ params letter
            '\u{1b}' if chars.peek() == Some(&'[') => {
                chars.next();
                while let Some(&n) = chars.peek() {
                    chars.next();
                    if n.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            // fix_line_breaks
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push('\n');
            }
            '\u{2028}' | '\u{2029}' | '\u{85}' => out.push('\n'),
            // uncurl_quotes
            '\u{2bc}' | '\u{2018}'..='\u{201b}' => out.push('\''),
            '\u{201c}'..='\u{201f}' => out.push('"'),
            // fix_latin_ligatures
            '\u{fb00}' => out.push_str("ff"),
            '\u{fb01}' => out.push_str("fi"),
            '\u{fb02}' => out.push_str("fl"),
            '\u{fb03}' => out.push_str("ffi"),
            '\u{fb04}' => out.push_str("ffl"),
            '\u{fb05}' | '\u{fb06}' => out.push_str("st"),
            '\u{132}' => out.push_str("IJ"),
            '\u{133}' => out.push_str("ij"),
            // fix_character_width: full-width ASCII and the ideographic space
            '\u{ff01}'..='\u{ff5e}' => out.push(char::from_u32(c as u32 - 0xff01 + 0x21).unwrap_or(c)),
            '\u{3000}' => out.push(' '),
            // remove_control_chars
            '\u{0}'..='\u{8}'
            | '\u{b}'
            | '\u{e}'..='\u{1f}'
            | '\u{7f}'
            | '\u{206a}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffc}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0000}'..='\u{e007f}' => {}
            _ => out.push(c),
        }
    }
    out
}

/// Decodes HTML character references like Python's `html.unescape`: numeric
/// (`&#39;`, `&#x27;`) and the named entities people actually type. Unknown names are
/// left as they are.
pub fn html_unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        match decode_reference(rest) {
            Some((text, used)) => {
                out.push_str(&text);
                rest = &rest[used..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Decodes one reference at the start of `s` (which begins with '&'); returns the text
/// and the number of bytes consumed.
fn decode_reference(s: &str) -> Option<(String, usize)> {
    let b = s.as_bytes();
    if b.get(1) == Some(&b'#') {
        let (digits_start, radix) = match b.get(2) {
            Some(b'x') | Some(b'X') => (3, 16),
            _ => (2, 10),
        };
        let digits = s[digits_start..]
            .bytes()
            .take_while(|c| c.is_ascii_hexdigit() && (radix == 16 || c.is_ascii_digit()))
            .count();
        if digits == 0 {
            return None;
        }
        let end = digits_start + digits;
        let n = u32::from_str_radix(&s[digits_start..end], radix).unwrap_or(u32::MAX);
        let used = if b.get(end) == Some(&b';') { end + 1 } else { end };
        // Python maps invalid and surrogate code points to U+FFFD and C1 controls via cp1252.
        let c = match n {
            0x80..=0x9f => cp1252(n).unwrap_or('\u{FFFD}'),
            0 | 0xD800..=0xDFFF => '\u{FFFD}',
            n if n > 0x10FFFF => '\u{FFFD}',
            n => char::from_u32(n).unwrap_or('\u{FFFD}'),
        };
        return Some((c.to_string(), used));
    }
    let name_len = s[1..].bytes().take_while(|c| c.is_ascii_alphanumeric()).count();
    if name_len == 0 {
        return None;
    }
    let name = &s[1..1 + name_len];
    let has_semi = b.get(1 + name_len) == Some(&b';');
    if let Some(text) = named_entity(name) {
        if has_semi {
            return Some((text.to_string(), name_len + 2));
        }
        // HTML5 accepts a few legacy names without ';' (Python does too).
        if LEGACY_NO_SEMICOLON.contains(&name) {
            return Some((text.to_string(), name_len + 1));
        }
    }
    // Longest legacy prefix, e.g. "&ampx" -> "&" + "x".
    for n in (2..name_len).rev() {
        let prefix = &name[..n];
        if LEGACY_NO_SEMICOLON.contains(&prefix) {
            return named_entity(prefix).map(|t| (t.to_string(), n + 1));
        }
    }
    None
}

const LEGACY_NO_SEMICOLON: &[&str] = &[
    "amp", "AMP", "lt", "LT", "gt", "GT", "quot", "QUOT", "nbsp", "copy", "COPY", "reg", "REG", "deg", "eacute",
    "egrave", "agrave", "aacute", "auml", "ouml", "uuml", "Auml", "Ouml", "Uuml", "szlig", "ccedil", "ntilde", "iexcl",
    "iquest", "laquo", "raquo", "middot", "para", "sect", "pound", "yen", "cent", "times", "divide", "plusmn",
    "frac12", "frac14", "frac34", "sup2", "sup3", "micro",
];

fn named_entity(name: &str) -> Option<&'static str> {
    Some(match name {
        "amp" | "AMP" => "&",
        "lt" | "LT" => "<",
        "gt" | "GT" => ">",
        "quot" | "QUOT" => "\"",
        "apos" => "'",
        "nbsp" => "\u{a0}",
        "copy" | "COPY" => "©",
        "reg" | "REG" => "®",
        "trade" => "™",
        "hellip" => "…",
        "mdash" => "—",
        "ndash" => "–",
        "lsquo" => "‘",
        "rsquo" => "’",
        "ldquo" => "“",
        "rdquo" => "”",
        "laquo" => "«",
        "raquo" => "»",
        "bull" => "•",
        "middot" => "·",
        "deg" => "°",
        "euro" => "€",
        "pound" => "£",
        "yen" => "¥",
        "cent" => "¢",
        "sect" => "§",
        "para" => "¶",
        "times" => "×",
        "divide" => "÷",
        "plusmn" => "±",
        "frac12" => "½",
        "frac14" => "¼",
        "frac34" => "¾",
        "sup2" => "²",
        "sup3" => "³",
        "micro" => "µ",
        "iexcl" => "¡",
        "iquest" => "¿",
        "eacute" => "é",
        "egrave" => "è",
        "agrave" => "à",
        "aacute" => "á",
        "auml" => "ä",
        "ouml" => "ö",
        "uuml" => "ü",
        "Auml" => "Ä",
        "Ouml" => "Ö",
        "Uuml" => "Ü",
        "szlig" => "ß",
        "ccedil" => "ç",
        "ntilde" => "ñ",
        "hearts" => "♥",
        "rarr" => "→",
        "larr" => "←",
        _ => return None,
    })
}

fn cp1252(n: u32) -> Option<char> {
    const TABLE: [u32; 32] = [
        0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D,
        0x017D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A,
        0x0153, 0x9D, 0x017E, 0x0178,
    ];
    char::from_u32(TABLE[(n - 0x80) as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_like_python() {
        assert_eq!(html_unescape("fish &amp; chips"), "fish & chips");
        assert_eq!(html_unescape("&lt;b&gt;"), "<b>");
        assert_eq!(html_unescape("it&#39;s &#x27;ok&#x27;"), "it's 'ok'");
        assert_eq!(html_unescape("AT&T"), "AT&T");
        assert_eq!(html_unescape("&amp"), "&");
        assert_eq!(html_unescape("&ampx"), "&x");
        assert_eq!(html_unescape("&unknown;"), "&unknown;");
        assert_eq!(html_unescape("&#150;"), "–");
        // Twice, as OpenAI's basic_clean does.
        assert_eq!(clean("a &amp;amp; b"), "a & b");
    }

    #[test]
    fn ftfy_fixes_what_it_fixes_in_well_formed_text() {
        assert_eq!(ftfy_fixes("\u{201c}curly\u{201d} \u{2018}q\u{2019}"), "\"curly\" 'q'");
        assert_eq!(ftfy_fixes("\u{ff26}\u{ff55}\u{ff4c}\u{ff4c}\u{ff1a}"), "Full:");
        assert_eq!(ftfy_fixes("\u{fb01}ne"), "fine");
        assert_eq!(ftfy_fixes("a\u{0}b\u{1b}[31mred\u{1b}[0m"), "abred");
        assert_eq!(ftfy_fixes("x\r\ny"), "x\ny");
    }

    #[test]
    fn canonicalize_is_open_clips() {
        assert_eq!(
            canonicalize("A Red-Circle, on_a  BLUE background!"),
            "a redcircle on a blue background"
        );
        assert_eq!(clean_as(TextClean::Canonicalize, " Fish &amp; Chips. "), "fish chips");
        assert_eq!(clean_as(TextClean::Lower, "A  Dog"), "a dog");
        assert_eq!(clean_as(TextClean::None, "  A  Dog "), "A  Dog");
    }

    #[test]
    fn whitespace_is_collapsed_and_trimmed() {
        assert_eq!(clean("  a\t red \n circle  "), "a red circle");
    }
}
