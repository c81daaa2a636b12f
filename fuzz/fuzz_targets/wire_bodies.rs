//! The API's v1 bodies as a client reads them from a server: any bytes are a body or an error,
//! and a body that converts into the core's types converts back to the same body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use marketplace_core::{DependencyGraph, PackageMetadata, RegistryEvent};
use marketplace_protocol::v1;

fuzz_target!(|data: &[u8]| {
    if let Ok(wire) = serde_json::from_slice::<v1::VersionMetadata>(data) {
        if let Ok(metadata) = PackageMetadata::try_from(wire) {
            let again = v1::VersionMetadata::from(&metadata);
            assert_eq!(PackageMetadata::try_from(again).ok(), Some(metadata));
        }
    }
    if let Ok(wire) = serde_json::from_slice::<v1::ResolvedGraph>(data) {
        if let Ok(graph) = DependencyGraph::try_from(wire) {
            let again = v1::ResolvedGraph::from(&graph);
            assert_eq!(DependencyGraph::try_from(again).ok(), Some(graph));
        }
    }
    if let Ok(page) = serde_json::from_slice::<v1::EventPage>(data) {
        for event in page.events {
            let _ = RegistryEvent::try_from(event);
        }
    }
    let _ = serde_json::from_slice::<v1::ErrorResponse>(data);
    let _ = serde_json::from_slice::<v1::VersionList>(data).map(|l| l.states());
});
