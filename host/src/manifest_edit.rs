//! What the manifest translators (`cloud_manifest`, `p3_manifest`, `single_label_manifest`)
//! share: spin.toml as an editable document that keeps its comments.

use anyhow::{bail, Context, Result};
use toml_edit::{DocumentMut, Item, TableLike, Value};

/// spin.toml's `text` as an editable document.
pub fn parse(text: &str) -> Result<DocumentMut> {
    text.parse().context("spin.toml is not valid TOML")
}

/// The `[component.*]` tables of `document`.
pub fn components(document: &mut DocumentMut) -> Result<&mut dyn TableLike> {
    match document
        .get_mut("component")
        .and_then(Item::as_table_like_mut)
    {
        Some(components) => Ok(components),
        None => bail!("spin.toml has no [component.*] tables"),
    }
}

/// Puts `new` in place of `value`, keeping the comments and spacing around it.
pub fn replace_keeping_decor(value: &mut Value, new: impl Into<Value>) {
    let decor = value.decor().clone();
    *value = new.into();
    *value.decor_mut() = decor;
}
