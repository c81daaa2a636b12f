//! An S3 store in a fresh bucket of the shared test server, for this crate's tests.

use marketplace_store_objectstore::{ObjectStorePackageStore, S3Config};
use marketplace_testing::s3::S3Server;

/// A store in a new `bucket` on `server`.
pub(crate) fn s3_store(server: &S3Server, bucket: &str) -> ObjectStorePackageStore {
    let b = server.bucket(bucket).expect("a bucket on the test server");
    ObjectStorePackageStore::s3(S3Config::compatible(
        b.name,
        b.endpoint,
        b.region,
        b.access_key_id,
        b.secret_access_key,
    ))
    .expect("an S3 store")
}
