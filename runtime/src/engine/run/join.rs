//! Joining a fork's branches: every branch is started before a failure is acted on, then the
//! first failure cancels the rest.
//!
//! `futures::future::try_join_all` stops polling at the first branch that fails, so a branch
//! that failed on its first poll (its execution had ended on another core before the group
//! polled it) kept every later sibling from ever starting: no span, nothing to cancel, fewer
//! branches run than the fork has. Here each branch is polled at least once (it opens its span
//! and starts its first node) before a failure ends the join; a branch already started is not
//! polled again after a failure, and is dropped with the join (cancelled).

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;

struct Branch<F, T> {
    /// `None` once it has ended.
    future: Option<Pin<Box<F>>>,
    started: bool,
    value: Option<T>,
}

/// The branches' values in their order, or the first failure once every branch has started.
pub(super) async fn try_join_started<F, T, E>(
    branches: impl IntoIterator<Item = F>,
) -> Result<Vec<T>, E>
where
    F: Future<Output = Result<T, E>>,
{
    let mut branches: Vec<Branch<F, T>> = branches
        .into_iter()
        .map(|future| Branch {
            future: Some(Box::pin(future)),
            started: false,
            value: None,
        })
        .collect();
    let mut failure: Option<E> = None;
    poll_fn(|cx| {
        let mut pending = false;
        for branch in &mut branches {
            if failure.is_some() && branch.started {
                continue;
            }
            let Some(future) = branch.future.as_mut() else {
                continue;
            };
            branch.started = true;
            match future.as_mut().poll(cx) {
                Poll::Pending => pending = true,
                Poll::Ready(Ok(value)) => {
                    branch.value = Some(value);
                    branch.future = None;
                }
                Poll::Ready(Err(e)) => {
                    branch.future = None;
                    failure.get_or_insert(e);
                }
            }
        }
        match failure.take() {
            Some(e) => Poll::Ready(Err(e)),
            None if pending => Poll::Pending,
            None => Poll::Ready(Ok(())),
        }
    })
    .await?;
    Ok(branches.into_iter().filter_map(|b| b.value).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    /// A branch that records when it starts and ends, and is dropped.
    struct Probe {
        log: Rc<std::cell::RefCell<Vec<String>>>,
        name: &'static str,
    }

    impl Drop for Probe {
        fn drop(&mut self) {
            self.log.borrow_mut().push(format!("{} dropped", self.name));
        }
    }

    #[test]
    fn a_branch_failing_at_once_still_lets_its_siblings_start_then_cancels_them() {
        let log = Rc::new(std::cell::RefCell::new(Vec::new()));
        let branch = |name: &'static str, fails: bool| {
            let log = log.clone();
            async move {
                let probe = Probe {
                    log: log.clone(),
                    name,
                };
                log.borrow_mut().push(format!("{name} started"));
                if fails {
                    return Err(format!("{name} failed"));
                }
                std::future::pending::<()>().await;
                drop(probe);
                Ok(())
            }
        };
        let join = try_join_started([branch("a", true), branch("b", false), branch("c", false)]);
        let outcome = futures::executor::block_on(join);
        assert_eq!(outcome, Err("a failed".to_string()));
        assert_eq!(
            *log.borrow(),
            [
                "a started",
                "a dropped",
                "b started",
                "c started",
                "b dropped",
                "c dropped"
            ]
        );
    }

    #[test]
    fn a_started_branch_is_not_polled_again_after_a_failure() {
        let polls = Rc::new(Cell::new(0));
        let counted = {
            let polls = polls.clone();
            std::future::poll_fn(move |_| {
                polls.set(polls.get() + 1);
                Poll::<Result<(), &str>>::Pending
            })
        };
        let failing_after_one_pending = {
            let mut first = true;
            std::future::poll_fn(move |cx| {
                if first {
                    first = false;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Poll::Ready(Err("late failure"))
            })
        };
        type Boxed<'a> = Pin<Box<dyn Future<Output = Result<(), &'static str>> + 'a>>;
        let branches: [Boxed; 2] = [Box::pin(failing_after_one_pending), Box::pin(counted)];
        let join = try_join_started(branches);
        assert_eq!(futures::executor::block_on(join), Err("late failure"));
        assert_eq!(polls.get(), 1, "polled to start, never after the failure");
    }

    #[test]
    fn values_come_in_branch_order_whatever_order_they_end_in() {
        let slow_then = |n: u32, yields: u32| async move {
            for _ in 0..yields {
                futures::pending!();
            }
            Ok::<_, ()>(n)
        };
        // `pending!` does not wake itself: a waker that always repolls.
        let join = try_join_started([slow_then(1, 3), slow_then(2, 0), slow_then(3, 1)]);
        let values = futures::executor::block_on(async {
            let mut join = Box::pin(join);
            std::future::poll_fn(|cx| {
                cx.waker().wake_by_ref();
                join.as_mut().poll(cx)
            })
            .await
        });
        assert_eq!(values, Ok(vec![1, 2, 3]));
    }
}
