//! Generated manifests and tables for comparing validation paths (test-only): every rule
//! gets a chance to fire, columns come in every storage type the checks treat differently
//! (text layouts, typed numbers, casts, booleans, dates), with nulls, missing-value texts,
//! bad values, duplicates, PHI-shaped values and short and long (> 12 bytes) texts.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, LargeStringArray,
    RecordBatch, StringArray, StringViewArray,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::manifest::Manifest;

/// A text column in one of the three string layouts.
fn text_array(values: Vec<Option<String>>, rng: &mut ChaCha8Rng) -> ArrayRef {
    match rng.gen_range(0..4) {
        0 => Arc::new(StringArray::from(values)),
        1 => Arc::new(LargeStringArray::from(values)),
        _ => Arc::new(StringViewArray::from(values)),
    }
}

/// The value, or null at the given rate (the value is drawn first).
macro_rules! maybe {
    ($rng:expr, $null_rate:expr, $value:expr) => {{
        let value = $value;
        (!$rng.gen_bool($null_rate)).then_some(value)
    }};
}

fn pick<'a>(rng: &mut ChaCha8Rng, pool: &[&'a str]) -> &'a str {
    pool[rng.gen_range(0..pool.len())]
}

const PHI_POOL: &[&str] = &[
    "13812345678",
    "138-1234-5678",
    "wang.li@example.cn",
    "https://x.example/p",
    "192.168.1.20",
    "11010519491231002X",
    "110105194912310021",
    "010-12345678",
    "123-45-6789",
    "北京市朝阳区建国路88号",
    "12 Baker Street, London",
    "京A12345",
    "2019-07-04",
    "1987年3月15日",
    "03/15/1987",
    "张伟",
    "王芳",
    "Mary Smith",
    "John Doe",
    "Patient reports chest pain radiating to the left arm since Monday",
    "E12345678",
    "6222021234567890123",
    "stable",
    "Heart Failure",
    "40-49",
    "12.5",
    "ok",
    "NA",
    "",
];

/// A manifest and a table that more or less follows it, from a seed.
pub(crate) fn generated_case(seed: u64) -> (Manifest, RecordBatch) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let rows = match rng.gen_range(0..10) {
        0 => 0,
        1 => rng.gen_range(1..5),
        _ => rng.gen_range(5..100),
    };
    let null_rate = [0.0, 0.0, 0.05, 0.3][rng.gen_range(0..4)];
    let mut fields: Vec<String> = Vec::new();
    let mut columns: Vec<(String, ArrayRef)> = Vec::new();
    let present = |rng: &mut ChaCha8Rng| rng.gen_bool(0.85);

    // Row id: distinct codes, some repeated; short or long; text, or integers (cast).
    fields.push("{name: record_id, type: string, role: row_id}".into());
    if present(&mut rng) {
        let long = rng.gen_bool(0.3);
        let repeat = rng.gen_bool(0.4);
        let ids: Vec<Option<String>> = (0..rows)
            .map(|i| {
                let i = if repeat && rng.gen_bool(0.1) {
                    i / 2
                } else {
                    i
                };
                let id = if long {
                    format!("patient-record-{i:08}")
                } else {
                    format!("R{i:06}")
                };
                maybe!(rng, null_rate / 4.0, id)
            })
            .collect();
        let array: ArrayRef = if rng.gen_bool(0.2) {
            Arc::new(Int64Array::from(
                (0..rows)
                    .map(|i| maybe!(rng, null_rate, i as i64 / 2))
                    .collect::<Vec<_>>(),
            ))
        } else {
            text_array(ids, &mut rng)
        };
        columns.push(("record_id".into(), array));
    }

    // Site and two quasi-identifiers.
    fields.push("{name: site, type: string, role: site, categories: [north, south]}".into());
    if present(&mut rng) {
        let values = (0..rows)
            .map(|_| {
                let site = pick(&mut rng, &["north", "south", "south", "east", "NA"]);
                maybe!(rng, null_rate, site.to_string())
            })
            .collect();
        columns.push(("site".into(), text_array(values, &mut rng)));
    }
    let qi_values = rng.gen_range(1..8);
    fields.push(
        "{name: band, type: string, privacy: quasi_identifier, categories: [a, b, c, d]}".into(),
    );
    if present(&mut rng) {
        let values = (0..rows)
            .map(|_| {
                let value = ["a", "b", "c", "d", "e", "f", "g", "h"][rng.gen_range(0..qi_values)];
                maybe!(rng, null_rate, value.to_string())
            })
            .collect();
        columns.push(("band".into(), text_array(values, &mut rng)));
    }
    fields.push(
        "{name: region, type: integer, privacy: quasi_identifier, constraints: {minimum: 1, maximum: 4}}"
            .into(),
    );
    if present(&mut rng) {
        let values: Vec<Option<i64>> = (0..rows)
            .map(|_| maybe!(rng, null_rate, rng.gen_range(0..6)))
            .collect();
        let array: ArrayRef = match rng.gen_range(0..4) {
            0 => Arc::new(Int32Array::from(
                values
                    .iter()
                    .map(|v| v.map(|v| v as i32))
                    .collect::<Vec<_>>(),
            )),
            1 => text_array(
                values.iter().map(|v| v.map(|v| v.to_string())).collect(),
                &mut rng,
            ),
            2 => Arc::new(Float64Array::from(
                values
                    .iter()
                    .map(|v| v.map(|v| v as f64))
                    .collect::<Vec<_>>(),
            )),
            _ => Arc::new(Int64Array::from(values)),
        };
        columns.push(("region".into(), array));
    }

    // The target(s).
    let target = rng.gen_range(0..5);
    match target {
        0 => fields.push("{name: outcome, type: integer, role: label, categories: [0, 1]}".into()),
        1 => {
            fields.push("{name: outcome, type: string, role: label, categories: [yes, no]}".into())
        }
        2 => fields.push("{name: outcome, type: boolean, role: label}".into()),
        3 => fields.push(
            "{name: outcome, type: number, role: label, constraints: {minimum: -10, maximum: 40}}"
                .into(),
        ),
        _ => {
            fields.push("{name: outcome, type: number, role: time_to_event, constraints: {minimum: 0, maximum: 45}}".into());
            fields.push("{name: event, type: integer, role: event, categories: [0, 1]}".into());
        }
    }
    if present(&mut rng) {
        let skew = rng.gen_range(0.0..1.0);
        let array: ArrayRef = match target {
            0 => {
                let values: Vec<Option<i64>> = (0..rows)
                    .map(|_| {
                        let value = if rng.gen_bool(0.02) {
                            2
                        } else {
                            i64::from(rng.gen_bool(skew))
                        };
                        maybe!(rng, null_rate, value)
                    })
                    .collect();
                if rng.gen_bool(0.5) {
                    Arc::new(Int64Array::from(values))
                } else {
                    text_array(
                        values
                            .iter()
                            .map(|v| {
                                v.map(|v| {
                                    if v == 1 && rng.gen_bool(0.2) {
                                        "01".to_string()
                                    } else {
                                        v.to_string()
                                    }
                                })
                            })
                            .collect(),
                        &mut rng,
                    )
                }
            }
            1 => text_array(
                (0..rows)
                    .map(|_| {
                        let value = if rng.gen_bool(skew) {
                            "yes"
                        } else {
                            pick(&mut rng, &["no", "no", "maybe"])
                        };
                        maybe!(rng, null_rate, value.to_string())
                    })
                    .collect(),
                &mut rng,
            ),
            2 => {
                if rng.gen_bool(0.5) {
                    Arc::new(BooleanArray::from(
                        (0..rows)
                            .map(|_| maybe!(rng, null_rate, rng.gen_bool(skew)))
                            .collect::<Vec<_>>(),
                    ))
                } else {
                    text_array(
                        (0..rows)
                            .map(|_| {
                                let value =
                                    pick(&mut rng, &["true", "false", "1", "0", "TRUE", "yes"]);
                                maybe!(rng, null_rate, value.to_string())
                            })
                            .collect(),
                        &mut rng,
                    )
                }
            }
            _ => {
                let constant = rng.gen_bool(0.3);
                Arc::new(Float64Array::from(
                    (0..rows)
                        .map(|_| {
                            let value = if constant {
                                7.0
                            } else {
                                rng.gen_range(-1.0..50.0_f64).round()
                            };
                            maybe!(rng, null_rate, value)
                        })
                        .collect::<Vec<_>>(),
                ))
            }
        };
        columns.push(("outcome".into(), array));
        if target == 4 && present(&mut rng) {
            columns.push((
                "event".into(),
                Arc::new(Int64Array::from(
                    (0..rows)
                        .map(|_| maybe!(rng, null_rate, i64::from(rng.gen_bool(skew))))
                        .collect::<Vec<_>>(),
                )),
            ));
        }
    }

    // A bounded number: floats (NaN, out of bounds) or text (missing texts, bad values).
    fields.push("{name: level, type: number, constraints: {minimum: 0, maximum: 100}}".into());
    if present(&mut rng) {
        let out_rate = [0.0, 0.0, 0.05][rng.gen_range(0..3)];
        let values: Vec<Option<f64>> = (0..rows)
            .map(|_| {
                let value = if rng.gen_bool(out_rate) {
                    [f64::NAN, -3.0, 1e12, 250.5][rng.gen_range(0..4)]
                } else {
                    (rng.gen_range(0.0..100.0_f64) * 4.0).round() / 4.0
                };
                maybe!(rng, null_rate, value)
            })
            .collect();
        let array: ArrayRef = if rng.gen_bool(0.6) {
            Arc::new(Float64Array::from(values))
        } else {
            text_array(
                values
                    .iter()
                    .map(|v| {
                        v.map(|v| match rng.gen_range(0..20) {
                            0 => "NA".to_string(),
                            1 => "abc".to_string(),
                            2 => format!("{v:e}"),
                            _ => v.to_string(),
                        })
                    })
                    .collect(),
                &mut rng,
            )
        };
        columns.push(("level".into(), array));
    }

    // Age: integer with the age header (values over 89), as integers or floats.
    fields.push("{name: age, type: integer, constraints: {minimum: 0, maximum: 120}}".into());
    if present(&mut rng) {
        let values: Vec<Option<f64>> = (0..rows)
            .map(|_| {
                let age = rng.gen_range(20..100) as f64;
                let age = if rng.gen_bool(0.1) { age + 0.5 } else { age };
                maybe!(rng, null_rate, age)
            })
            .collect();
        let array: ArrayRef = if rng.gen_bool(0.5) {
            Arc::new(Int64Array::from(
                values
                    .iter()
                    .map(|v| v.map(|v| v as i64))
                    .collect::<Vec<_>>(),
            ))
        } else {
            Arc::new(Float64Array::from(values))
        };
        columns.push(("age".into(), array));
    }

    // A month date: text of several precisions, or typed dates (cast to text).
    fields.push(
        "{name: admitted, type: date, precision: month, constraints: {minimum: \"2018-01\", maximum: \"2021-12\"}}"
            .into(),
    );
    if present(&mut rng) {
        let array: ArrayRef = if rng.gen_bool(0.2) {
            Arc::new(Date32Array::from(
                (0..rows)
                    .map(|_| maybe!(rng, null_rate, rng.gen_range(17_000..19_500)))
                    .collect::<Vec<_>>(),
            ))
        } else {
            text_array(
                (0..rows)
                    .map(|_| {
                        let value = match rng.gen_range(0..12) {
                            0 => "2019-03-04".to_string(),
                            1 => "2030-01".to_string(),
                            2 => "March".to_string(),
                            3 => "2020".to_string(),
                            _ => {
                                format!("{}-{:02}", rng.gen_range(2018..2022), rng.gen_range(1..13))
                            }
                        };
                        maybe!(rng, null_rate, value)
                    })
                    .collect(),
                &mut rng,
            )
        };
        columns.push(("admitted".into(), array));
    }

    // A boolean feature, typed or text.
    fields.push("{name: smoker, type: boolean}".into());
    if present(&mut rng) {
        let array: ArrayRef = if rng.gen_bool(0.5) {
            Arc::new(BooleanArray::from(
                (0..rows)
                    .map(|_| maybe!(rng, null_rate, rng.r#gen::<bool>()))
                    .collect::<Vec<_>>(),
            ))
        } else {
            text_array(
                (0..rows)
                    .map(|_| {
                        maybe!(
                            rng,
                            null_rate,
                            pick(&mut rng, &["true", "false", "0", "perhaps"]).to_string()
                        )
                    })
                    .collect(),
                &mut rng,
            )
        };
        columns.push(("smoker".into(), array));
    }

    // Free text with identifiers in it, mostly of one kind or a mix.
    fields.push("{name: notes, type: string}".into());
    if present(&mut rng) {
        let focus = rng.gen_range(0..PHI_POOL.len());
        let values = (0..rows)
            .map(|i| {
                let value = match rng.gen_range(0..4) {
                    0 => PHI_POOL[rng.gen_range(0..PHI_POOL.len())].to_string(),
                    1 => format!("{} {i}", PHI_POOL[focus]),
                    _ => PHI_POOL[focus].to_string(),
                };
                maybe!(rng, null_rate, value)
            })
            .collect();
        columns.push(("notes".into(), text_array(values, &mut rng)));
    }

    // A unique code (text codes, or numbers), nearly unique or not.
    fields.push("{name: code, type: string, constraints: {unique: true}}".into());
    if present(&mut rng) {
        let numeric = rng.gen_bool(0.3);
        let repeat = [0.0, 0.05, 0.5][rng.gen_range(0..3)];
        let values = (0..rows)
            .map(|i| {
                let i = if rng.gen_bool(repeat) { i / 3 } else { i };
                let value = if numeric {
                    format!("{}", 1000 + i)
                } else {
                    format!("K{i:05}Q")
                };
                maybe!(rng, null_rate / 4.0, value)
            })
            .collect();
        columns.push(("code".into(), text_array(values, &mut rng)));
    }

    // Names, by header and by value.
    fields.push("{name: patient_name, type: string}".into());
    if present(&mut rng) {
        let names = [
            "张伟",
            "王芳",
            "李娜",
            "Mary Smith",
            "John Doe",
            "Ana Lopez",
            "刘洋",
            "陈静",
        ];
        let spread = rng.gen_range(1..names.len());
        let values = (0..rows)
            .map(|_| maybe!(rng, null_rate, names[rng.gen_range(0..spread)].to_string()))
            .collect();
        columns.push(("patient_name".into(), text_array(values, &mut rng)));
    }

    // Postcodes by header.
    fields.push("{name: zip_code, type: string}".into());
    if present(&mut rng) {
        let values = (0..rows)
            .map(|_| {
                let value = pick(&mut rng, &["100020", "94110", "94110-1234", "n/a"]);
                maybe!(rng, null_rate, value.to_string())
            })
            .collect();
        columns.push(("zip_code".into(), text_array(values, &mut rng)));
    }

    // A direct identifier that was uploaded anyway, and an integer phone column.
    fields.push("{name: phone, type: integer, role: excluded, privacy: direct_identifier}".into());
    if rng.gen_bool(0.3) {
        columns.push((
            "phone".into(),
            Arc::new(Int64Array::from(
                (0..rows)
                    .map(|i| maybe!(rng, null_rate, 13_812_345_600 + i as i64))
                    .collect::<Vec<_>>(),
            )),
        ));
    }
    // An undeclared column.
    if rng.gen_bool(0.3) {
        let values = (0..rows)
            .map(|_| maybe!(rng, null_rate, pick(&mut rng, PHI_POOL).to_string()))
            .collect();
        columns.push(("remarks".into(), text_array(values, &mut rng)));
    }

    columns.shuffle(&mut rng);
    let manifest = Manifest::from_str(&format!(
        r#"name: generated
title: Generated
version: "1"
provider: {{name: test}}
provenance:
  collectionPeriod: {{start: "2018-01", end: "2021-12"}}
  ethicsApproval: none
  legalBasis: synthetic
  deidentification: {{method: other}}
permittedUses: {{purposes: [test], terms: synthetic}}
licenses: [{{name: CC0-1.0}}]
schema:
  missingValues: ["", "NA"]
  fields:
    - {}
"#,
        fields.join("\n    - ")
    ))
    .unwrap_or_else(|error| panic!("generated manifest: {error}"));
    let batch = if columns.is_empty() {
        RecordBatch::new_empty(Arc::new(arrow::datatypes::Schema::empty()))
    } else {
        RecordBatch::try_from_iter(columns).unwrap_or_else(|error| panic!("batch: {error}"))
    };
    (manifest, batch)
}
