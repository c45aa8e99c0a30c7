//! Push-dataset schema: the dataset/table/column model with its validation, and the row encoder that turns cell
//! values into `POST rows` JSON. Two files because they do two jobs at two speeds (the model is checked once per
//! dataset, the encoder runs for every row); the encoder depends on the model, never the other way.

mod model;
mod row_encoder;

pub use model::{
    Column, CrossFilteringBehavior, DataType, DatasetSchema, MAX_COLUMNS, MAX_RELATIONSHIPS,
    MAX_TABLE_NAME_LEN, MAX_TABLES, Measure, Relationship, SchemaError, TableSchema,
    check_column_name, check_table_name, validate_dataset, validate_table,
};
pub use row_encoder::{
    EncodedRow, MAX_STRING_CHARS, RowEncoder, Value, ValueError, encode_row, truncate_utf16,
    write_json_string,
};
