% Kettle's driver for TEA's inline Prolog, loaded once into each Trealla interpreter.
% TEA's interface (after TEA's prolog_runtime.py, MIT): state/2 reads the state, return/2 writes
% an update; each term of a node's code is a directive (run), a rule (asserted), a fact (asserted
% for this node only) or a goal (run). Kettle's additions print outcomes between the bytes 2 and
% 3, which the Rust side reads.
% Trealla's dynamic/1 is a directive only, not a predicate one can call.
kettle_dynamic((A, B)) :- !, kettle_dynamic(A), kettle_dynamic(B).
kettle_dynamic([]) :- !.
kettle_dynamic([S|Ss]) :- !, kettle_dynamic(S), kettle_dynamic(Ss).
kettle_dynamic(Name/Arity) :- functor(H, Name, Arity), assertz(H), retract(H).

:- kettle_dynamic(state/2).
:- kettle_dynamic(return_value/2).
:- kettle_dynamic(tea_user_fact/1).

return(Key, Value) :- assertz(return_value(Key, Value)).

% SWI-Prolog names TEA's examples use that Trealla spells differently.
sumlist(Xs, S) :- sum_list(Xs, S).

% Functors that are goals even when a term looks like a fact (TEA's list).
tea_action_predicate(return).
tea_action_predicate(state).
tea_action_predicate(',').
tea_action_predicate(';').
tea_action_predicate('->').
tea_action_predicate('*->').
tea_action_predicate('>').
tea_action_predicate('<').
tea_action_predicate('>=').
tea_action_predicate('=<').
tea_action_predicate('=:=').
tea_action_predicate('=\\=').
tea_action_predicate('=').
tea_action_predicate('\\=').
tea_action_predicate('==').
tea_action_predicate('\\==').
tea_action_predicate('@<').
tea_action_predicate('@>').
tea_action_predicate('@=<').
tea_action_predicate('@>=').
tea_action_predicate('\\+').
tea_action_predicate(is).
tea_action_predicate(findall).
tea_action_predicate(bagof).
tea_action_predicate(setof).
tea_action_predicate(member).
tea_action_predicate(memberchk).
tea_action_predicate(append).
tea_action_predicate(length).
tea_action_predicate(nth0).
tea_action_predicate(nth1).
tea_action_predicate(msort).
tea_action_predicate(sort).
tea_action_predicate(reverse).
tea_action_predicate(last).
tea_action_predicate(sumlist).
tea_action_predicate(sum_list).
tea_action_predicate(max_list).
tea_action_predicate(min_list).
tea_action_predicate(forall).
tea_action_predicate(aggregate_all).
tea_action_predicate(aggregate).
tea_action_predicate(call).
tea_action_predicate(once).
tea_action_predicate(succ).
tea_action_predicate(plus).
tea_action_predicate(write).
tea_action_predicate(writeln).
tea_action_predicate(print).
tea_action_predicate(format).
tea_action_predicate(atom).
tea_action_predicate(number).
tea_action_predicate(integer).
tea_action_predicate(float).
tea_action_predicate(compound).
tea_action_predicate(is_list).
tea_action_predicate(ground).
tea_action_predicate(atom_string).
tea_action_predicate(atom_codes).
tea_action_predicate(atom_chars).
tea_action_predicate(label).
tea_action_predicate(labeling).
tea_action_predicate(in).
tea_action_predicate(ins).
tea_action_predicate('#=').
tea_action_predicate('#\\=').
tea_action_predicate('#<').
tea_action_predicate('#>').
tea_action_predicate('#=<').
tea_action_predicate('#>=').
tea_action_predicate(all_different).
tea_action_predicate(all_distinct).

tea_is_fact(Term) :- compound(Term), functor(Term, F, _), atom(F), \+ tea_action_predicate(F).

tea_process_term((:- Body)) :- !, tea_directive(Body).
tea_process_term((Head :- Body)) :- !, kettle_rewrite(Body, Body1), assertz((Head :- Body1)).
tea_process_term(Term) :-
    (   tea_is_fact(Term)
    ->  assertz(Term), assertz(tea_user_fact(Term))
    ;   kettle_rewrite(Term, Goal), call(Goal)
    ).

% Trealla 0.17.10's CLP(Z) raises instantiation_error on a linear constraint over three or more
% variables written as an expression (`X + Y + Z #= 15`, `T #= X + Y`), while scalar_product/4
% over the same terms works. So every CLP(Z) comparison in a goal or a rule's body goes through
% kettle_clpz/3, which looks at it when it runs (values from state/2 or a rule's arguments
% known then): a linear sum of three or more variables becomes scalar_product/4, anything else
% runs as written.
kettle_clpz_op(#=).
kettle_clpz_op(#\=).
kettle_clpz_op(#<).
kettle_clpz_op(#>).
kettle_clpz_op(#=<).
kettle_clpz_op(#>=).

kettle_rewrite(G, G) :- var(G), !.
kettle_rewrite((A, B), (A1, B1)) :- !, kettle_rewrite(A, A1), kettle_rewrite(B, B1).
kettle_rewrite((A ; B), (A1 ; B1)) :- !, kettle_rewrite(A, A1), kettle_rewrite(B, B1).
kettle_rewrite((A -> B), (A1 -> B1)) :- !, kettle_rewrite(A, A1), kettle_rewrite(B, B1).
kettle_rewrite(\+ A, \+ A1) :- !, kettle_rewrite(A, A1).
kettle_rewrite(once(A), once(A1)) :- !, kettle_rewrite(A, A1).
kettle_rewrite(call(A), call(A1)) :- !, kettle_rewrite(A, A1).
kettle_rewrite(forall(A, B), forall(A1, B1)) :- !, kettle_rewrite(A, A1), kettle_rewrite(B, B1).
kettle_rewrite(findall(T, A, L), findall(T, A1, L)) :- !, kettle_rewrite(A, A1).
kettle_rewrite(G, kettle_clpz(Op, L, R)) :-
    compound(G), G =.. [Op, L, R], kettle_clpz_op(Op), !.
kettle_rewrite(G, G).

kettle_clpz(Op, L, R) :-
    G =.. [Op, L, R],
    (   kettle_linear(L, 1, [], Ps1, 0, C1),
        kettle_linear(R, -1, Ps1, Ps, C1, C),
        length(Ps, N), N >= 3
    ->  kettle_split(Ps, Cs, Vs),
        K is -C,
        catch(scalar_product(Cs, Vs, Op, K), error(existence_error(procedure, _), _), call(G))
    ;   call(G)
    ).

% kettle_linear(Expr, Sign, Terms0, Terms, Const0, Const): Expr times Sign as Coefficient-Var
% terms and a constant.
kettle_linear(V, S, Ps, [S-V|Ps], C, C) :- var(V), !.
kettle_linear(N, S, Ps, Ps, C0, C) :- integer(N), !, C is C0 + S * N.
kettle_linear(A + B, S, Ps0, Ps, C0, C) :- !,
    kettle_linear(A, S, Ps0, Ps1, C0, C1), kettle_linear(B, S, Ps1, Ps, C1, C).
kettle_linear(A - B, S, Ps0, Ps, C0, C) :- !,
    kettle_linear(A, S, Ps0, Ps1, C0, C1), S1 is -S, kettle_linear(B, S1, Ps1, Ps, C1, C).
kettle_linear(- A, S, Ps0, Ps, C0, C) :- !, S1 is -S, kettle_linear(A, S1, Ps0, Ps, C0, C).
kettle_linear(N * A, S, Ps0, Ps, C0, C) :- integer(N), !,
    S1 is S * N, kettle_linear(A, S1, Ps0, Ps, C0, C).
kettle_linear(A * N, S, Ps0, Ps, C0, C) :- integer(N), !,
    S1 is S * N, kettle_linear(A, S1, Ps0, Ps, C0, C).

kettle_split([], [], []).
kettle_split([C-V|Ps], [C|Cs], [V|Vs]) :- kettle_split(Ps, Cs, Vs).

% library(clpfd) is SWI-Prolog's; Trealla's CLP(Z) (the same author's successor) stands for it.
tea_directive(use_module(library(clpfd))) :- !, use_module(library(clpz)).
tea_directive(dynamic(Specs)) :- !, kettle_dynamic(Specs).
tea_directive(discontiguous(_)) :- !.
tea_directive(Goal) :- call(Goal).

kettle_emit(Term) :-
    char_code(Start, 2), char_code(End, 3),
    put_char(Start), writeq(Term), put_char(End).

% A node starts with the run's state and nothing returned; facts of the last node are gone.
kettle_begin :-
    retractall(state(_, _)),
    retractall(return_value(_, _)),
    forall(tea_user_fact(F), retract(F)),
    retractall(tea_user_fact(_)).

% One clause of the node's code: read, then run or assert. Emits ok, failed, syntax(E) or error(E).
kettle_clause(Text) :-
    catch(read_term_from_chars(Text, Term, []), E, true),
    (   nonvar(E)
    ->  kettle_emit(syntax(E))
    ;   catch((tea_process_term(Term) -> R = ok ; R = failed), E2, R = error(E2)),
        kettle_emit(R)
    ).

% The returned values as one JSON object (the last return/2 of a key wins).
kettle_returns :-
    findall(K-V, return_value(K, V), Pairs),
    char_code(Start, 2), char_code(End, 3),
    put_char(Start), kettle_json_object(Pairs), put_char(End).

kettle_json_object(Pairs) :- put_char('{'), kettle_json_members(Pairs), put_char('}').
kettle_json_members([]).
kettle_json_members([P|Ps]) :-
    kettle_pair(P, K, V),
    kettle_json_key(K), put_char(':'), kettle_json(V),
    (   Ps == [] -> true ; put_char(',') ),
    kettle_json_members(Ps).
kettle_pair(K-V, K, V) :- !.
kettle_pair(K=V, K, V) :- !.
kettle_pair(K:V, K, V).
kettle_json_key(K) :- ( atom(K) -> A = K ; format(atom(A), "~w", [K]) ), kettle_json_atom(A).

kettle_json(V) :- var(V), !, write(null).
kettle_json(V) :- integer(V), !, write(V).
kettle_json(V) :- float(V), !, kettle_json_float(V).
kettle_json(true) :- !, write(true).
kettle_json(false) :- !, write(false).
kettle_json(null) :- !, write(null).
kettle_json([]) :- !, write('[]').
kettle_json(json(Pairs)) :- is_list(Pairs), !, kettle_json_object(Pairs).
kettle_json(V) :- atom(V), !, kettle_json_atom(V).
kettle_json(V) :- string(V), !, atom_chars(A, V), kettle_json_atom(A).
kettle_json(V) :- is_list(V), !, put_char('['), kettle_json_items(V), put_char(']').
kettle_json(V) :- format(atom(A), "~q", [V]), kettle_json_atom(A).

% As TEA: a float with no fraction is an integer.
kettle_json_float(V) :-
    (   abs(V) < 1.0e15, V =:= float_integer_part(V)
    ->  I is truncate(V), write(I)
    ;   write(V)
    ).

kettle_json_items([X]) :- !, kettle_json(X).
kettle_json_items([X|Xs]) :- kettle_json(X), put_char(','), kettle_json_items(Xs).

kettle_json_atom(A) :-
    atom_codes(A, Cs),
    put_char('"'), kettle_json_codes(Cs), put_char('"').
kettle_json_codes([]).
kettle_json_codes([C|Cs]) :- kettle_json_code(C), kettle_json_codes(Cs).
kettle_json_code(34) :- !, put_char('\\'), put_char('"').
kettle_json_code(92) :- !, put_char('\\'), put_char('\\').
kettle_json_code(C) :-
    C < 32, !,
    H is C >> 4, L is C /\ 15,
    write('\\u00'), kettle_hex(H), kettle_hex(L).
kettle_json_code(C) :- char_code(Ch, C), put_char(Ch).
kettle_hex(D) :- D < 10, !, C is 0'0 + D, put_char_code(C).
kettle_hex(D) :- C is 0'a + D - 10, put_char_code(C).
put_char_code(C) :- char_code(Ch, C), put_char(Ch).
