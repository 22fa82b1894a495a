//! The table's global secondary indexes as one list: created with the table, added one per
//! UpdateTable to a table made before them. No AWS call.

use aws_sdk_dynamodb::types::{AttributeDefinition, GlobalSecondaryIndex, KeyType, Projection, ProjectionType};

use super::{key, string_attribute, INDEX_NAME, INDEX_PARTITION_KEY, INDEX_SORT_KEY, PARTITION_KEY, SORT_KEY};
use wsstack_handlers::records;

/// One global secondary index of the table.
pub(super) struct Index {
    pub name: &'static str,
    pub partition_key: &'static str,
    pub sort_key: &'static str,
    pub projection: ProjectionType,
}

/// The indexes in the order they are added to an older table (one per UpdateTable call).
pub(super) static INDEXES: [Index; 2] = [
    Index {
        name: INDEX_NAME,
        partition_key: INDEX_PARTITION_KEY,
        sort_key: INDEX_SORT_KEY,
        projection: ProjectionType::All,
    },
    Index {
        name: records::GSI2,
        partition_key: records::GSI2PK,
        sort_key: records::GSI2SK,
        projection: ProjectionType::KeysOnly,
    },
];

impl Index {
    pub fn schema(&self) -> String {
        format!("{}:HASH,{}:RANGE", self.partition_key, self.sort_key)
    }

    pub fn projection(&self) -> Projection {
        Projection::builder().projection_type(self.projection.clone()).build()
    }

    pub fn definition(&self) -> GlobalSecondaryIndex {
        GlobalSecondaryIndex::builder()
            .index_name(self.name)
            .key_schema(key(self.partition_key, KeyType::Hash))
            .key_schema(key(self.sort_key, KeyType::Range))
            .projection(self.projection())
            .build()
            .expect("index has its fields")
    }

    pub fn create_action(&self) -> aws_sdk_dynamodb::types::GlobalSecondaryIndexUpdate {
        let action = aws_sdk_dynamodb::types::CreateGlobalSecondaryIndexAction::builder()
            .index_name(self.name)
            .key_schema(key(self.partition_key, KeyType::Hash))
            .key_schema(key(self.sort_key, KeyType::Range))
            .projection(self.projection())
            .build()
            .expect("index action has its fields");
        aws_sdk_dynamodb::types::GlobalSecondaryIndexUpdate::builder()
            .create(action)
            .build()
    }
}

/// Every key attribute of the table and its indexes (all strings).
pub(super) fn attribute_definitions() -> Vec<AttributeDefinition> {
    let mut names = vec![PARTITION_KEY, SORT_KEY];
    for index in &INDEXES {
        names.extend([index.partition_key, index.sort_key]);
    }
    names.into_iter().map(string_attribute).collect()
}
