//! A labelled corpus for the PHI scan: columns that hold personal data, which must all be
//! found by their values alone (the headers here are neutral, `column_7`), and ordinary
//! columns of a medical table, which must almost never be flagged. The figures are printed
//! (`cargo test -p datasets-spec --test deid_corpus -- --nocapture`) and asserted.
//!
//! The name columns use names written here, not taken from the lists the scan ships, so a
//! miss means the rule, not the test, is wrong.

use medarena_datasets_spec::phi::{self, ColumnContext, PhiKind};
use medarena_datasets_spec::values::TextColumn;

/// A fixed-seed generator (splitmix64): the corpus is the same on every run.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

const GIVEN: &[&str] = &[
    "Mary",
    "Patricia",
    "Linda",
    "Barbara",
    "Elizabeth",
    "Jennifer",
    "Maria",
    "Susan",
    "Margaret",
    "Dorothy",
    "Lisa",
    "Nancy",
    "Karen",
    "Betty",
    "Helen",
    "Sandra",
    "Donna",
    "Carol",
    "Ruth",
    "Sharon",
    "Michelle",
    "Laura",
    "Sarah",
    "Kimberly",
    "Deborah",
    "James",
    "John",
    "Robert",
    "Michael",
    "William",
    "David",
    "Richard",
    "Charles",
    "Joseph",
    "Thomas",
    "Christopher",
    "Daniel",
    "Paul",
    "Mark",
    "Donald",
    "George",
    "Kenneth",
    "Steven",
    "Edward",
    "Brian",
    "Ronald",
    "Anthony",
    "Kevin",
    "Jason",
    "Matthew",
    "Gary",
    "Timothy",
    "Jose",
    "Larry",
    "Jeffrey",
    "Frank",
    "Scott",
    "Eric",
    "Stephen",
    "Andrew",
    "Raymond",
    "Gregory",
];

const SURNAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Jones",
    "Brown",
    "Davis",
    "Miller",
    "Wilson",
    "Moore",
    "Taylor",
    "Anderson",
    "Thomas",
    "Jackson",
    "White",
    "Harris",
    "Martin",
    "Thompson",
    "Garcia",
    "Martinez",
    "Robinson",
    "Clark",
    "Rodriguez",
    "Lewis",
    "Lee",
    "Walker",
    "Hall",
    "Allen",
    "Young",
    "Hernandez",
    "King",
    "Wright",
    "Lopez",
    "Hill",
    "Scott",
    "Green",
    "Adams",
    "Baker",
    "Gonzalez",
    "Nelson",
    "Carter",
    "Mitchell",
    "Perez",
    "Roberts",
    "Turner",
    "Phillips",
    "Campbell",
    "Parker",
    "Evans",
    "Edwards",
    "Collins",
    "Stewart",
    "Sanchez",
    "Morris",
    "Rogers",
    "Reed",
    "Cook",
    "Morgan",
    "Bell",
    "Murphy",
    "Bailey",
    "Rivera",
];

const PINYIN_SURNAMES: &[&str] = &[
    "wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun", "ma",
    "zhu", "hu", "guo", "he", "lin", "gao", "luo",
];

const PINYIN_GIVEN: &[&str] = &[
    "wei", "fang", "na", "min", "jing", "li", "qiang", "lei", "jun", "yang", "yong", "yan", "jie",
    "tao", "ming", "chao", "xiuying", "xiaoming", "jianguo", "guiying", "haiyan", "zhiqiang",
    "lihua", "dongmei",
];

const HANZI_SURNAMES: &[&str] = &["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周"];
const HANZI_GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "秀英", "丽", "强", "磊", "军", "洋", "勇",
];

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The columns that hold personal data, with the rows of each.
fn phi_columns(draw: &mut Draw, rows: usize) -> Vec<(&'static str, Vec<String>)> {
    let mut column = |make: &mut dyn FnMut(&mut Draw) -> String| -> Vec<String> {
        (0..rows).map(|_| make(draw)).collect()
    };
    vec![
        (
            "given names, lower case",
            column(&mut |d| d.pick(GIVEN).to_lowercase()),
        ),
        (
            "given names, upper case",
            column(&mut |d| d.pick(GIVEN).to_uppercase()),
        ),
        (
            "surnames, capitalised",
            column(&mut |d| d.pick(SURNAMES).to_string()),
        ),
        (
            "surnames, upper case",
            column(&mut |d| d.pick(SURNAMES).to_uppercase()),
        ),
        (
            "full names",
            column(&mut |d| format!("{} {}", d.pick(GIVEN), d.pick(SURNAMES))),
        ),
        (
            "full names, lower case",
            column(&mut |d| format!("{} {}", d.pick(GIVEN), d.pick(SURNAMES)).to_lowercase()),
        ),
        (
            "surname, given",
            column(&mut |d| format!("{}, {}", d.pick(SURNAMES), d.pick(GIVEN))),
        ),
        (
            "names with an initial",
            column(&mut |d| {
                let initial = (b'A' + d.below(26) as u8) as char;
                format!("{} {initial}. {}", d.pick(GIVEN), d.pick(SURNAMES))
            }),
        ),
        (
            "pinyin names",
            column(&mut |d| format!("{} {}", d.pick(PINYIN_SURNAMES), d.pick(PINYIN_GIVEN))),
        ),
        (
            "pinyin names, capitalised",
            column(&mut |d| {
                format!(
                    "{} {}",
                    capitalised(d.pick(PINYIN_SURNAMES)),
                    capitalised(d.pick(PINYIN_GIVEN))
                )
            }),
        ),
        (
            "hanzi names",
            column(&mut |d| format!("{}{}", d.pick(HANZI_SURNAMES), d.pick(HANZI_GIVEN))),
        ),
        (
            "dates of birth",
            column(&mut |d| {
                format!(
                    "{}-{:02}-{:02}",
                    1930 + d.below(70),
                    1 + d.below(12),
                    1 + d.below(28)
                )
            }),
        ),
        (
            "US dates of birth",
            column(&mut |d| {
                format!(
                    "{:02}/{:02}/{}",
                    1 + d.below(12),
                    1 + d.below(28),
                    1930 + d.below(70)
                )
            }),
        ),
        (
            "record numbers",
            column(&mut |d| format!("MRN{:07}", d.below(10_000_000))),
        ),
        (
            "uuids",
            column(&mut |d| {
                let (a, b) = (d.next(), d.next());
                format!(
                    "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
                    a >> 32,
                    a & 0xffff,
                    (a >> 16) & 0xfff,
                    b >> 48,
                    b & 0xffff_ffff_ffff
                )
            }),
        ),
        (
            "accession numbers",
            column(&mut |d| format!("AC-{}-{:06}", 2020 + d.below(6), d.below(1_000_000))),
        ),
        (
            "phone numbers",
            column(&mut |d| format!("138{:08}", d.below(100_000_000))),
        ),
        (
            "emails",
            column(&mut |d| {
                format!(
                    "{}.{}@example.org",
                    d.pick(GIVEN).to_lowercase(),
                    d.pick(SURNAMES).to_lowercase()
                )
            }),
        ),
        (
            "street addresses",
            column(&mut |d| format!("{} {} Street", 1 + d.below(999), d.pick(SURNAMES))),
        ),
        (
            "resident ids",
            column(&mut |d| {
                let mut id = format!(
                    "110105{}{:02}{:02}{:03}",
                    1940 + d.below(60),
                    1 + d.below(12),
                    1 + d.below(28),
                    d.below(1000)
                )
                .into_bytes();
                let check = phi::resident_id_check_char(&id).expect("17 digits");
                id.push(check);
                String::from_utf8(id).expect("ascii")
            }),
        ),
        (
            "clinical notes",
            column(&mut |d| {
                format!(
                    "Pt seen in clinic today, reports {} days of chest pain radiating to the left arm; \
                 seen by Dr {}, follow up in {} weeks with repeat ECG and troponin.",
                    1 + d.below(9),
                    d.pick(SURNAMES),
                    1 + d.below(6)
                )
            }),
        ),
    ]
}

const DRUGS: &[&str] = &[
    "metformin",
    "lisinopril",
    "atorvastatin",
    "amlodipine",
    "metoprolol",
    "omeprazole",
    "simvastatin",
    "losartan",
    "albuterol",
    "gabapentin",
    "hydrochlorothiazide",
    "sertraline",
    "furosemide",
    "acetaminophen",
    "warfarin",
    "insulin glargine",
    "prednisone",
    "tramadol",
    "clopidogrel",
    "pantoprazole",
    "apixaban",
    "rivaroxaban",
    "heparin",
    "aspirin",
];

const DIAGNOSES: &[&str] = &[
    "Heart Failure",
    "Chest Pain",
    "Pneumonia",
    "Sepsis",
    "Atrial Fibrillation",
    "Type 2 Diabetes",
    "Acute Kidney Injury",
    "Urinary Tract Infection",
    "Stroke",
    "Hypertension",
    "Copd Exacerbation",
    "Cellulitis",
    "Syncope",
    "Gastrointestinal Bleed",
    "Pulmonary Embolism",
    "Deep Vein Thrombosis",
    "Hip Fracture",
    "Asthma",
    "Delirium",
    "Acute Pancreatitis",
    "Diabetic Ketoacidosis",
    "Myocardial Infarction",
    "Anemia",
    "Hyponatremia",
    "Alcohol Withdrawal",
    "Small Bowel Obstruction",
    "Appendicitis",
    "Cholecystitis",
    "Pyelonephritis",
    "Angina",
    "Bronchiolitis",
    "Croup",
    "Migraine",
    "Seizure",
    "Dehydration",
    "Fall",
    "Back Pain",
    "Abdominal Pain",
    "Kidney Stone",
    "Head Injury",
    "Overdose",
    "Hypoglycemia",
    "Cirrhosis",
    "Lung Cancer",
    "Breast Cancer",
    "Colon Cancer",
    "Lymphoma",
    "Leukemia",
    "Dementia",
    "Depression",
    "Schizophrenia",
    "Bipolar Disorder",
    "Anxiety",
    "Pressure Ulcer",
    "Osteomyelitis",
    "Endocarditis",
    "Meningitis",
    "Encephalitis",
    "Heat Stroke",
    "Hypothermia",
];

const WARDS: &[&str] = &[
    "ICU",
    "CCU",
    "Cardiology",
    "Oncology",
    "General Medicine",
    "General Surgery",
    "Orthopaedics",
    "Neurology",
    "Ward 3B",
    "Ward 4A",
    "Emergency",
    "Maternity",
    "Paediatrics",
    "Geriatrics",
    "Respiratory",
    "Renal",
    "Day Surgery",
    "Rehabilitation",
];

const CLINICS: &[&str] = &[
    "St Mary's Hospital",
    "Royal Free",
    "Addenbrooke's",
    "Mercy Medical Center",
    "Grace Clinic",
    "Hope Clinic",
    "Victoria Infirmary",
    "Kings College Hospital",
    "Mount Sinai",
    "Johns Hopkins",
    "Mayo Clinic",
    "Cleveland Clinic",
    "Massachusetts General",
];

const UNITS: &[&str] = &[
    "mg/dL", "mmol/L", "U/L", "g/dL", "mEq/L", "ng/mL", "%", "x10^9/L", "fL", "pg",
];

const ICD10: &[&str] = &[
    "I50.9", "E11.9", "J18.9", "I48.91", "N17.9", "N39.0", "I63.9", "I10", "J44.1", "L03.90",
    "R55", "K92.2", "I26.99", "I82.409", "S72.001A", "J45.909", "F05", "K85.90", "E10.10", "I21.4",
    "D64.9", "E87.1", "F10.239", "K56.609", "K35.80", "K81.0", "N10", "I20.9",
];

const CATEGORY_COLUMNS: &[(&str, &[&str])] = &[
    (
        "ethnicity",
        &["White", "Black", "Asian", "Hispanic", "Other", "Unknown"],
    ),
    (
        "race, upper case",
        &["WHITE", "BLACK", "ASIAN", "AMERICAN INDIAN", "OTHER"],
    ),
    ("sex", &["M", "F"]),
    ("sex, words", &["Male", "Female", "male", "female"]),
    ("yes/no", &["Yes", "No", "Unknown"]),
    ("smoking", &["never", "former", "current"]),
    (
        "blood group",
        &["A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-"],
    ),
    (
        "insurance",
        &["Medicare", "Medicaid", "Private", "Self Pay", "Tricare"],
    ),
    (
        "admission type",
        &["Emergency", "Elective", "Urgent", "Newborn"],
    ),
    (
        "disposition",
        &[
            "Home",
            "Home Health",
            "Skilled Nursing Facility",
            "Rehab",
            "Hospice",
            "Expired",
        ],
    ),
    ("outcome", &["alive", "dead"]),
    (
        "marital status",
        &["Single", "Married", "Divorced", "Widowed"],
    ),
    (
        "language",
        &[
            "English",
            "Spanish",
            "Mandarin",
            "Cantonese",
            "French",
            "Arabic",
        ],
    ),
    (
        "religion",
        &["Catholic", "Protestant", "Jewish", "Muslim", "None"],
    ),
    (
        "months",
        &[
            "January", "February", "March", "April", "May", "June", "July", "August",
        ],
    ),
    (
        "weekdays",
        &[
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
        ],
    ),
    (
        "departments, hanzi",
        &[
            "心内科",
            "呼吸科",
            "神经内科",
            "普外科",
            "骨科",
            "儿科",
            "急诊科",
        ],
    ),
    ("sex, hanzi", &["男", "女"]),
    // 高 and 黄 are surnames too.
    (
        "diagnoses, hanzi",
        &[
            "高血压",
            "糖尿病",
            "冠心病",
            "肺炎",
            "黄疸",
            "贫血",
            "高血脂",
            "脑梗死",
        ],
    ),
    ("nyha class", &["I", "II", "III", "IV"]),
    ("severity", &["mild", "moderate", "severe", "critical"]),
    (
        "drug route",
        &["oral", "IV", "IM", "SC", "inhaled", "topical"],
    ),
    (
        "specimen",
        &["Blood", "Urine", "Sputum", "Stool", "Wound Swab", "CSF"],
    ),
    (
        "organism",
        &[
            "E. coli",
            "S. aureus",
            "K. pneumoniae",
            "P. aeruginosa",
            "Candida",
        ],
    ),
];

/// Ordinary columns of medical tables, categories drawn with repetition.
fn ordinary_columns(draw: &mut Draw, rows: usize) -> Vec<(String, Vec<String>)> {
    let mut sampled = |name: &str, from: &[&str]| -> (String, Vec<String>) {
        (
            name.to_string(),
            (0..rows).map(|_| draw.pick(from).to_string()).collect(),
        )
    };
    let mut columns = vec![
        sampled("drugs", DRUGS),
        sampled("diagnoses", DIAGNOSES),
        sampled("wards", WARDS),
        sampled("clinics", CLINICS),
        sampled("lab units", UNITS),
        sampled("icd-10 codes", ICD10),
    ];
    for (name, values) in CATEGORY_COLUMNS {
        columns.push(sampled(name, values));
    }
    columns.push((
        "lab values as text".to_string(),
        (0..rows)
            .map(|_| format!("{}.{}", draw.below(300), draw.below(10)))
            .collect(),
    ));
    columns.push((
        "admission months".to_string(),
        (0..rows)
            .map(|_| format!("{}-{:02}", 2015 + draw.below(8), 1 + draw.below(12)))
            .collect(),
    ));
    columns.push((
        "blood pressure".to_string(),
        (0..rows)
            .map(|_| format!("{}/{}", 90 + draw.below(90), 50 + draw.below(50)))
            .collect(),
    ));
    columns.push((
        "drug doses".to_string(),
        (0..rows)
            .map(|_| format!("{} {} mg", draw.pick(DRUGS), 5 * (1 + draw.below(100))))
            .collect(),
    ));
    columns
}

fn findings(values: &[String]) -> Vec<PhiKind> {
    let array = medarena_datasets_spec::arrow::array::StringArray::from(
        values.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    phi::scan_text_column(
        "column_7",
        &TextColumn::Utf8(&array),
        ColumnContext {
            is_row_id: false,
            row_cap: 5,
        },
    )
    .into_iter()
    .map(|hit| hit.kind)
    .collect()
}

#[test]
fn every_phi_column_is_found_and_ordinary_columns_are_left_alone() {
    let mut draw = Draw(0x5EED_0011);
    let mut missed = Vec::new();
    let mut false_alarms = Vec::new();
    let (mut phi_total, mut ordinary_total) = (0, 0);
    // Tables of a small clinic, a ward, a hospital.
    for rows in [40, 300, 2_000] {
        for (name, values) in phi_columns(&mut draw, rows) {
            phi_total += 1;
            let found = findings(&values);
            // Dates of birth are told by the spread of their years, header or not.
            let wrong_kind = name.contains("of birth") && !found.contains(&PhiKind::DateOfBirth);
            if found.is_empty() || wrong_kind {
                missed.push(format!(
                    "{name} ({rows} rows): {found:?}, e.g. {:?}",
                    &values[..3]
                ));
            }
        }
        for (name, values) in ordinary_columns(&mut draw, rows) {
            ordinary_total += 1;
            let found = findings(&values);
            if !found.is_empty() {
                false_alarms.push(format!("{name} ({rows} rows): {found:?}"));
            }
        }
    }
    println!(
        "PHI columns found: {}/{phi_total}; ordinary columns flagged: {}/{ordinary_total} ({:.1}%)",
        phi_total - missed.len(),
        false_alarms.len(),
        100.0 * false_alarms.len() as f64 / ordinary_total as f64
    );
    for line in missed.iter().chain(&false_alarms) {
        println!("  {line}");
    }
    assert!(missed.is_empty(), "missed PHI columns: {missed:#?}");
    assert!(
        false_alarms.len() * 100 <= ordinary_total,
        "more than 1% of ordinary columns flagged: {false_alarms:#?}"
    );
}
