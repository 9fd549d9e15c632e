// #[pmap(process, init = connect)]
// fn lookup(db: &mut Db, key: String) -> Option<String> { db.get(&key) }

#[track_caller]
fn lookup(
    items: impl ::core::iter::IntoIterator<Item = String>,
) -> ::std::vec::Vec<Option<String>> {
    ::twat_mp::__private::pmap_init_process(
        &::twat_mp::__private::Config {
            process: true,
            ..::twat_mp::__private::Config::DEFAULT
        },
        ::twat_mp::__render!(String),
        ::twat_mp::__private::state_init_process::<Db>(connect),
        |db: &mut Db, key: String| -> Option<String> { db.get(&key) },
        items,
    )
}
