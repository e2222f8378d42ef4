//! `search::prompts`: prompt templates and ensembles (the CLIP paper, section 3.1.4).
//! CLIP was trained on sentences, so a bare class name ("dog") embeds worse than the
//! same name in a sentence ("a photo of a dog."), and averaging many such sentences
//! (the normalised embeddings of every template filled in, renormalised) embeds better
//! still. vidseek embeds a short query (a noun phrase: see [`noun_phrase`]) and every
//! label of a vocabulary through the ensemble of the model's templates, and a sentence
//! as written. Ensembles are cached per model and template set: labels in the store
//! (with the vocabulary), queries in memory.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use super::SearchError;
use crate::embed::Embedder;

/// Most templates one request may bring.
pub const MAX_TEMPLATES: usize = 200;
/// Query ensembles kept in memory (the cache is emptied when it fills).
const QUERY_CACHE: usize = 4096;

/// Which templates a request uses.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Templates {
    /// The model package's templates (`files.templates`), none when it has none.
    #[default]
    Auto,
    /// Text as written.
    None,
    /// These templates.
    Given(Vec<String>),
}

impl std::str::FromStr for Templates {
    type Err = SearchError;

    /// `auto`, `none`, or templates separated by `|`, each with `{}` once.
    fn from_str(s: &str) -> Result<Self, SearchError> {
        match s {
            "auto" => Ok(Templates::Auto),
            "none" => Ok(Templates::None),
            _ => Templates::given(
                s.split('|')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string),
            ),
        }
    }
}

impl std::fmt::Display for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Templates::Auto => f.write_str("auto"),
            Templates::None => f.write_str("none"),
            Templates::Given(t) => f.write_str(&t.join("|")),
        }
    }
}

impl Templates {
    /// Checked templates (a file's lines, a request's list).
    pub fn given(templates: impl IntoIterator<Item = String>) -> Result<Self, SearchError> {
        let t: Vec<String> = templates.into_iter().collect();
        let bad = |why: String| SearchError::BadTemplates(why);
        if t.is_empty() {
            return Err(bad(
                "no template given: write auto, none, or templates with {} such as `a photo of a {}.`".into(),
            ));
        }
        if t.len() > MAX_TEMPLATES {
            return Err(bad(format!("{} templates; the limit is {MAX_TEMPLATES}", t.len())));
        }
        if let Some(x) = t
            .iter()
            .find(|x| x.matches("{}").count() != 1 || x.chars().count() > 200)
        {
            return Err(bad(format!(
                "the template {x:?} must hold {{}} exactly once (where the query goes) and be at most 200 characters"
            )));
        }
        Ok(Templates::Given(t))
    }
}

/// A resolved template set with its identity (for caches).
#[derive(Debug)]
pub struct TemplateSet {
    pub templates: Vec<String>,
    pub hash: u64,
}

impl TemplateSet {
    fn new(templates: Vec<String>) -> Self {
        let hash = templates.iter().fold(crate::util::hash::FNV_OFFSET, |h, t| {
            crate::util::hash::fnv1a(crate::util::hash::fnv1a(h, t.as_bytes()), b"\n")
        });
        Self { templates, hash }
    }

    /// The sentences of `phrase`.
    pub fn fill(&self, phrase: &str) -> Vec<String> {
        self.templates.iter().map(|t| t.replacen("{}", phrase, 1)).collect()
    }
}

/// The template set a request uses with a model (None: text as written).
pub fn resolve(t: &Templates, model: &Embedder) -> Option<Arc<TemplateSet>> {
    static SETS: LazyLock<Mutex<HashMap<Vec<String>, Arc<TemplateSet>>>> = LazyLock::new(Default::default);
    let list = match t {
        Templates::None => return None,
        Templates::Auto => model.templates()?.to_vec(),
        Templates::Given(g) => g.clone(),
    };
    let mut sets = SETS.lock().unwrap_or_else(|e| e.into_inner());
    if sets.len() > 64 {
        sets.clear();
    }
    Some(
        sets.entry(list.clone())
            .or_insert_with(|| Arc::new(TemplateSet::new(list)))
            .clone(),
    )
}

const ARTICLES: [&str; 3] = ["a", "an", "the"];
/// Words that make a query a sentence rather than a name.
const SENTENCE_WORDS: [&str; 14] = [
    "is", "are", "was", "were", "be", "then", "while", "who", "which", "that", "photo", "picture", "image", "video",
];

/// The name in a short query (a noun phrase of at most four words besides a leading
/// article, with no sentence punctuation and no verb-like word), without the article:
/// "a red circle" gives "red circle", "dog" gives "dog"; "a dog catching a frisbee"
/// and "a red circle on a blue background" are sentences (None).
pub fn noun_phrase(text: &str) -> Option<&str> {
    let t = text.trim();
    if t.is_empty() || t.contains(['.', '!', '?', ',', ';', ':', '"', '{', '}']) {
        return None;
    }
    let mut words: Vec<&str> = t.split_whitespace().collect();
    let mut rest = t;
    if words.len() > 1 && ARTICLES.contains(&words[0].to_lowercase().as_str()) {
        rest = t[words[0].len()..].trim_start();
        words.remove(0);
    }
    let sentence = words.len() > 4
        || words.iter().any(|w| {
            let w = w.to_lowercase();
            SENTENCE_WORDS.contains(&w.as_str())
                || ARTICLES.contains(&w.as_str())
                || (w.len() > 4 && w.ends_with("ing"))
        });
    (!sentence).then_some(rest)
}

/// Embeds texts through `set`: each text that is a noun phrase (or each text, with
/// `all`: labels are names) as the ensemble of its templates, the others as written.
/// Unit vectors in `texts` order.
pub async fn embed(
    model: &Arc<Embedder>,
    set: Option<&TemplateSet>,
    texts: &[String],
    all: bool,
) -> Result<Vec<Vec<f32>>, SearchError> {
    type Key = (String, u64, String);
    static CACHE: LazyLock<Mutex<HashMap<Key, Vec<f32>>>> = LazyLock::new(Default::default);
    let Some(set) = set else {
        return super::vectors::embed_texts(model, texts.to_vec()).await;
    };
    let key = |t: &str| (model.model_name().to_string(), set.hash, t.to_string());
    let mut out: Vec<Option<Vec<f32>>> = vec![None; texts.len()];
    let mut plain: Vec<usize> = Vec::new();
    let mut ensembles: Vec<(usize, Vec<String>)> = Vec::new();
    {
        let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        for (i, t) in texts.iter().enumerate() {
            let phrase = if all {
                Some(noun_phrase(t).unwrap_or(t.trim()))
            } else {
                noun_phrase(t)
            };
            match phrase {
                None => plain.push(i),
                Some(p) => match cache.get(&key(t)) {
                    Some(v) => out[i] = Some(v.clone()),
                    None => ensembles.push((i, set.fill(p))),
                },
            }
        }
    }
    let mut batch: Vec<String> = plain.iter().map(|&i| texts[i].clone()).collect();
    for (_, sentences) in &ensembles {
        batch.extend(sentences.iter().cloned());
    }
    let rows = super::vectors::embed_texts(model, batch).await?;
    let mut rows = rows.into_iter();
    for &i in &plain {
        out[i] = rows.next();
    }
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() + ensembles.len() > QUERY_CACHE {
        cache.clear();
    }
    for (i, sentences) in ensembles {
        let mut v = vec![0.0f32; model.dim()];
        for row in rows.by_ref().take(sentences.len()) {
            v.iter_mut().zip(&row).for_each(|(a, b)| *a += b);
        }
        super::vectors::normalize(&mut v);
        cache.insert(key(&texts[i]), v.clone());
        out[i] = Some(v);
    }
    Ok(out.into_iter().map(|v| v.expect("every text embedded")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_queries_are_names_and_sentences_are_not() {
        assert_eq!(noun_phrase("a red circle"), Some("red circle"));
        assert_eq!(noun_phrase("dog"), Some("dog"));
        assert_eq!(noun_phrase("  An orange star "), Some("orange star"));
        assert_eq!(noun_phrase("a dog catching a frisbee"), None);
        assert_eq!(noun_phrase("a red circle on a blue background"), None);
        assert_eq!(noun_phrase("a red circle."), None);
        assert_eq!(noun_phrase("a photo of a dog"), None);
        assert_eq!(noun_phrase(""), None);
    }

    #[test]
    fn templates_parse_and_are_checked() {
        assert_eq!("auto".parse::<Templates>().unwrap(), Templates::Auto);
        assert_eq!("none".parse::<Templates>().unwrap(), Templates::None);
        assert_eq!(
            "a photo of a {}.| a {} in a video game.".parse::<Templates>().unwrap(),
            Templates::Given(vec!["a photo of a {}.".into(), "a {} in a video game.".into()])
        );
        assert!("a photo".parse::<Templates>().is_err());
        assert!("{} and {}".parse::<Templates>().is_err());
        assert!("".parse::<Templates>().is_err());
        let set = TemplateSet::new(vec!["a photo of a {}.".into(), "itap of a {}.".into()]);
        assert_eq!(
            set.fill("red circle"),
            vec!["a photo of a red circle.", "itap of a red circle."]
        );
    }
}
