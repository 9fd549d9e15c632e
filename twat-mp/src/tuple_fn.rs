//! [`TupleFn`]: calling a function of several arguments with one tuple, for `starmap`.

/// A function of several arguments that can be called with one tuple of them, as
/// Python's `starmap` spreads each tuple over the arguments.
///
/// It is implemented for every `Fn` of one to eight arguments; closures need their
/// argument types written out so that the compiler can pick the arity.
///
/// ```
/// use twat_mp::ThreadPool;
///
/// let pool = ThreadPool::with_nodes(2)?;
/// let sums = pool.starmap(|a: u32, b: u32| a + b, vec![(1, 2), (3, 4)])?;
/// assert_eq!(sums, vec![3, 7]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait TupleFn<Args> {
    /// What the function returns.
    type Output;
    /// Calls the function with the tuple's fields as its arguments.
    ///
    /// ```
    /// use twat_mp::TupleFn;
    ///
    /// let area = |width: u32, height: u32| width * height;
    /// assert_eq!(area.call_tuple((3, 4)), 12);
    /// ```
    fn call_tuple(&self, args: Args) -> Self::Output;
}

macro_rules! tuple_fn {
    ($($arg:ident),+) => {
        impl<Func, Ret, $($arg),+> TupleFn<($($arg,)+)> for Func
        where
            Func: Fn($($arg),+) -> Ret,
        {
            type Output = Ret;
            #[allow(non_snake_case)]
            fn call_tuple(&self, ($($arg,)+): ($($arg,)+)) -> Ret {
                self($($arg),+)
            }
        }
    };
}

tuple_fn!(A);
tuple_fn!(A, B);
tuple_fn!(A, B, C);
tuple_fn!(A, B, C, D);
tuple_fn!(A, B, C, D, E);
tuple_fn!(A, B, C, D, E, F);
tuple_fn!(A, B, C, D, E, F, G);
tuple_fn!(A, B, C, D, E, F, G, H);
