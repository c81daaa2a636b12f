//! The integration guide's program (`examples/embed.rs`, which the guide's snippet mirrors)
//! runs twice on one data directory: the second run reuses the key, finds the version
//! published and the package installed, and fails nothing.

#[allow(dead_code, unreachable_pub)]
#[path = "../../../examples/embed.rs"]
mod embed;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guide_s_program_runs_twice_on_one_directory() {
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates/greeting");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(
        templates.join("marketplace.toml"),
        "[package]\nname = \"greeting\"\nversion = \"1.0.0\"\ndescription = \"A friendly greeting template\"\nlicense = \"MIT\"\n",
    )
    .unwrap();
    std::fs::write(templates.join("greeting.txt"), "Hello, {{name}}!\n").unwrap();
    let data = dir.path().join("my-tool-data");

    assert!(
        embed::run(&data, &templates).await.unwrap(),
        "the first run publishes"
    );
    let key = std::fs::read(data.join("publisher.pem")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("publisher.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the private key is readable by its owner only"
        );
    }
    assert!(
        !embed::run(&data, &templates).await.unwrap(),
        "the second run finds the version published"
    );
    assert_eq!(
        std::fs::read(data.join("publisher.pem")).unwrap(),
        key,
        "the key is kept"
    );
    assert!(data.join("installed/greeting-1.0.0/greeting.txt").is_file());
}
