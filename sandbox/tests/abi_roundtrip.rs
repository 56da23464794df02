//! The host's table blocks read back through the guest SDK: what the host writes is what
//! a submission sees (property-tested over values, nulls and levels).

use std::sync::Arc;

use arrow_array::builder::StringDictionaryBuilder;
use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use medarena_guest::{ColumnData, Labels as GuestLabels, Table, TaskKind};
use medarena_sandbox::Labels;
use medarena_sandbox::abi::encode_tables;
use proptest::prelude::*;

/// Copies a block into 8-aligned memory, as the host's allocation guarantees in the guest.
fn aligned(block: &[u8]) -> Vec<u64> {
    let mut words = vec![0u64; block.len().div_ceil(8)];
    // SAFETY: the destination has at least block.len() bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(block.as_ptr(), words.as_mut_ptr().cast::<u8>(), block.len())
    };
    words
}

fn bytes(words: &[u64], len: usize) -> &[u8] {
    // SAFETY: u64 storage viewed as bytes.
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), len) }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arrow_tables_read_back_through_the_guest_sdk(
        numbers in prop::collection::vec(prop::option::of(-1e6f64..1e6), 0..40),
        flags in prop::collection::vec(prop::option::of(any::<bool>()), 40),
        words in prop::collection::vec(prop::option::of("[a-c]{1,2}"), 40),
        test_words in prop::collection::vec(prop::option::of("[b-e]{1,2}"), 40),
        // Rows sliced off the front: Arrow slices keep their buffers and an offset, and
        // validity bitmaps then start mid-byte.
        skip in 0usize..19,
    ) {
        let n = numbers.len();
        let batch = |words: &[Option<String>]| {
            let mut dictionary = StringDictionaryBuilder::<Int32Type>::new();
            let mut padded_numbers = vec![Some(0.5); skip];
            padded_numbers.extend(numbers.iter().copied());
            let mut padded_flags = vec![None; skip];
            padded_flags.extend(flags[..n].iter().copied());
            let mut padded_words = vec![Some("zz".to_string()); skip];
            padded_words.extend(words[..n].iter().cloned());
            for word in &padded_words {
                dictionary.append_option(word.as_deref());
            }
            let first = -(skip as i64);
            let columns: Vec<(&str, ArrayRef)> = vec![
                ("number", Arc::new(Float64Array::from(padded_numbers))),
                ("flag", Arc::new(BooleanArray::from(padded_flags))),
                ("site", Arc::new(dictionary.finish())),
                ("word", Arc::new(StringArray::from(padded_words))),
                ("count", Arc::new(Int64Array::from((first..n as i64).collect::<Vec<_>>()))),
                ("day", Arc::new(Date32Array::from((first as i32..n as i32).collect::<Vec<_>>()))),
            ];
            RecordBatch::try_from_iter(columns).unwrap().slice(skip, n)
        };
        let (train, test) = (batch(&words), batch(&test_words));
        let blocks = encode_tables(&[&train, &test]).unwrap();
        for (block, source) in blocks.iter().zip([&words, &test_words]) {
            let storage = aligned(block);
            let table = Table::from_block(bytes(&storage, block.len())).unwrap();
            prop_assert_eq!(table.n_rows(), n);
            prop_assert_eq!(table.columns().len(), 6);
            let Some(ColumnData::Number(values)) = table.column("number").map(|c| c.data.clone()) else { panic!("number") };
            for (value, expected) in values.iter().zip(&numbers) {
                match expected {
                    Some(expected) => prop_assert_eq!(value.to_bits(), expected.to_bits()),
                    None => prop_assert_eq!(value.to_bits(), medarena_sandbox::abi::CANONICAL_NAN.to_bits()),
                }
            }
            let Some(ColumnData::Boolean(values)) = table.column("flag").map(|c| c.data.clone()) else { panic!("flag") };
            for (value, expected) in values.iter().zip(&flags) {
                prop_assert_eq!(*value, expected.map_or(2, u8::from));
            }
            // Both category columns decode to the original strings, in train and test,
            // through one shared list of levels.
            for name in ["site", "word"] {
                let Some(ColumnData::Category { codes, levels }) = table.column(name).map(|c| c.data.clone()) else { panic!("{name}") };
                for (code, expected) in codes.iter().zip(source.iter()) {
                    let decoded = (*code != u32::MAX).then(|| levels[*code as usize].to_string());
                    prop_assert_eq!(decoded.as_deref(), expected.as_deref());
                }
            }
            let counts = table.column("count").unwrap().as_f64().unwrap();
            prop_assert_eq!(counts, &(0..n).map(|i| i as f64).collect::<Vec<_>>()[..]);
            prop_assert!(matches!(table.column("day").unwrap().data, ColumnData::Date(_)));
        }
    }
}

#[test]
fn labels_read_back_through_the_guest_sdk() {
    let survival = Labels::Survival {
        time: vec![3.0, 1.5],
        event: vec![true, false],
    };
    let block = survival.encode().unwrap();
    let storage = aligned(&block);
    let table = Table::from_block(bytes(&storage, block.len())).unwrap();
    match GuestLabels::from_table(TaskKind::Survival, &table).unwrap() {
        GuestLabels::Survival { time, event } => {
            assert_eq!(time, &[3.0, 1.5]);
            assert_eq!(event, &[1.0, 0.0]);
        }
        other => panic!("{other:?}"),
    }
    let multiclass = Labels::Multiclass {
        classes: vec!["a".into(), "b".into(), "c".into()],
        codes: vec![2, 0],
    };
    let block = multiclass.encode().unwrap();
    let storage = aligned(&block);
    let table = Table::from_block(bytes(&storage, block.len())).unwrap();
    match GuestLabels::from_table(TaskKind::Multiclass, &table).unwrap() {
        GuestLabels::Multiclass { codes, classes } => {
            assert_eq!(codes, &[2, 0]);
            assert_eq!(classes, vec!["a", "b", "c"]);
        }
        other => panic!("{other:?}"),
    }
    let bad = Labels::Regression(vec![1.0, f64::NAN]);
    assert!(bad.encode().unwrap_err().to_string().contains("row 1"));
}
