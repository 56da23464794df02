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
