//! Keeping secrets out of `{:?}` output, and so out of logs.

/// Implements `Debug` for a newtype over a secret as `Name([redacted])`.
macro_rules! redacted_debug {
    ($name:ident) => {
        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

pub(crate) use redacted_debug;
