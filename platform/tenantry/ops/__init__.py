"""Operations endpoints: liveness, readiness."""
