//! Uniform read access to Arrow columns: text columns of any string layout, and any other
//! column rendered as text when a check needs the text.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, LargeStringArray, StringArray, StringViewArray};
use arrow::datatypes::DataType;

/// A text view over a column, whatever its string layout.
pub enum TextColumn<'a> {
    /// `Utf8`
    Utf8(&'a StringArray),
    /// `LargeUtf8`
    Large(&'a LargeStringArray),
    /// `Utf8View` (what polars hands over)
    View(&'a StringViewArray),
}

impl<'a> TextColumn<'a> {
    /// The text view of a string column, `None` for other types.
    pub fn of(array: &'a dyn Array) -> Option<TextColumn<'a>> {
        match array.data_type() {
            DataType::Utf8 => Some(TextColumn::Utf8(array.as_string::<i32>())),
            DataType::LargeUtf8 => Some(TextColumn::Large(array.as_string::<i64>())),
            DataType::Utf8View => Some(TextColumn::View(array.as_string_view())),
            _ => None,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            TextColumn::Utf8(a) => a.len(),
            TextColumn::Large(a) => a.len(),
            TextColumn::View(a) => a.len(),
        }
    }

    /// Whether the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text of a row, `None` when null.
    #[inline]
    pub fn get(&self, row: usize) -> Option<&'a str> {
        match self {
            TextColumn::Utf8(a) => a.is_valid(row).then(|| a.value(row)),
            TextColumn::Large(a) => a.is_valid(row).then(|| a.value(row)),
            TextColumn::View(a) => a.is_valid(row).then(|| a.value(row)),
        }
    }
}

/// The column as text: itself when it is a string column, else cast to `Utf8`.
pub fn as_text(array: &ArrayRef) -> Option<ArrayRef> {
    if TextColumn::of(array.as_ref()).is_some() {
        return Some(Arc::clone(array));
    }
    arrow::compute::cast(array, &DataType::Utf8).ok()
}

/// Whether a data type is a string layout.
pub fn is_text(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// A text as a hash key: texts of up to 12 bytes packed into a `u128` the way Arrow's
/// `Utf8View` stores them inline (length in the low 4 bytes, then the bytes, zero-padded),
/// longer texts as themselves. Keys of short texts, by far the most common cells, hash and
/// compare as one integer, and a `Utf8View` column gives them without touching its buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextKey<'a> {
    /// A text of at most 12 bytes, packed.
    Inline(u128),
    /// A longer text.
    Long(&'a str),
}

impl<'a> TextKey<'a> {
    /// The key of a text.
    #[inline]
    pub(crate) fn of(text: &'a str) -> TextKey<'a> {
        let bytes = text.as_bytes();
        if bytes.len() <= 12 {
            let mut packed = [0u8; 16];
            packed[..4].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
            packed[4..4 + bytes.len()].copy_from_slice(bytes);
            TextKey::Inline(u128::from_le_bytes(packed))
        } else {
            TextKey::Long(text)
        }
    }

    /// The key of a `Utf8View` view when the text is inline (`None` for longer texts). The
    /// padding is masked rather than trusted, so equal texts always give equal keys.
    #[inline]
    pub(crate) fn of_view(view: u128) -> Option<u128> {
        let length = view as u32;
        match length {
            0..12 => Some(view & ((1u128 << (32 + 8 * length)) - 1)),
            12 => Some(view),
            _ => None,
        }
    }
}

/// Calls `f(index, Some((key, text)))` for every non-null row of a text column and
/// `f(index, None)` for the others. `text()` gives the text when the caller needs more than
/// its key.
#[inline]
pub(crate) fn for_each_text<'a>(
    column: &TextColumn<'a>,
    mut f: impl FnMut(usize, Option<(TextKey<'a>, &dyn Fn() -> &'a str)>),
) {
    match column {
        TextColumn::View(array) => {
            for (index, view) in array.views().iter().enumerate() {
                if array.is_null(index) {
                    f(index, None);
                    continue;
                }
                match TextKey::of_view(*view) {
                    Some(key) => f(index, Some((TextKey::Inline(key), &|| array.value(index)))),
                    None => {
                        let text = array.value(index);
                        f(index, Some((TextKey::Long(text), &|| text)));
                    }
                }
            }
        }
        TextColumn::Utf8(array) => for_each_string(array, f),
        TextColumn::Large(array) => for_each_string(array, f),
    }
}

/// [`for_each_text`] on an offset-based string array.
#[inline]
fn for_each_string<'a, O: arrow::array::OffsetSizeTrait>(
    array: &'a arrow::array::GenericStringArray<O>,
    mut f: impl FnMut(usize, Option<(TextKey<'a>, &dyn Fn() -> &'a str)>),
) {
    for index in 0..array.len() {
        if array.is_null(index) {
            f(index, None);
        } else {
            let text = array.value(index);
            f(index, Some((TextKey::of(text), &|| text)));
        }
    }
}

/// A map from texts to values that owns its keys, so that it can outlive the column it was
/// filled from (validation of a file batch by batch).
#[derive(Debug)]
pub(crate) struct TextMap<V> {
    inline: foldhash::HashMap<u128, V>,
    long: foldhash::HashMap<Box<str>, V>,
}

impl<V> Default for TextMap<V> {
    fn default() -> Self {
        use foldhash::HashMapExt;
        TextMap {
            inline: foldhash::HashMap::new(),
            long: foldhash::HashMap::new(),
        }
    }
}

impl<V> TextMap<V> {
    /// Number of keys.
    pub(crate) fn len(&self) -> usize {
        self.inline.len() + self.long.len()
    }

    /// The value of a key.
    #[inline]
    pub(crate) fn get(&self, key: TextKey<'_>) -> Option<&V> {
        match key {
            TextKey::Inline(packed) => self.inline.get(&packed),
            TextKey::Long(text) => self.long.get(text),
        }
    }

    /// The value of a key, inserting `make()` first when absent.
    #[inline]
    pub(crate) fn get_or_insert_with(&mut self, key: TextKey<'_>, make: impl FnOnce() -> V) -> V
    where
        V: Copy,
    {
        match key {
            TextKey::Inline(packed) => *self.inline.entry(packed).or_insert_with(make),
            TextKey::Long(text) => {
                // Look up before allocating the owned key: most lookups find it.
                if let Some(value) = self.long.get(text) {
                    return *value;
                }
                let value = make();
                self.long.insert(text.into(), value);
                value
            }
        }
    }

    /// Inserts a key; returns whether it was absent.
    #[inline]
    pub(crate) fn insert(&mut self, key: TextKey<'_>, value: V) -> bool {
        match key {
            TextKey::Inline(packed) => self.inline.insert(packed, value).is_none(),
            TextKey::Long(text) => {
                if self.long.contains_key(text) {
                    false
                } else {
                    self.long.insert(text.into(), value);
                    true
                }
            }
        }
    }
}
