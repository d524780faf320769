from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from tenantry.auth.deps import provide_platform_auth_service, provide_tenant_auth_service
from tenantry.auth.middleware import Principal
from tenantry.auth.schemas import (
    LoginRequest,
    MeResponse,
    RefreshRequest,
    SignupRequest,
    TokenResponse,
    UserOut,
)
from tenantry.auth.services import PlatformAuthService, TenantAuthService
from tenantry.lib.errors import ErrorCode
from tenantry.lib.openapi import problems
from tenantry.lib.zones import PLATFORM_PUBLIC, TENANT_PUBLIC


class TenantAuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]
    dependencies = {"auth_service": Provide(provide_tenant_auth_service, sync_to_thread=False)}

    @post(
        "/signup",
        opt={"zone": TENANT_PUBLIC},
        responses=problems(
            ErrorCode.SIGNUP_DISABLED,
            ErrorCode.EMAIL_TAKEN,
            ErrorCode.PASSWORD_TOO_SHORT,
            ErrorCode.PASSWORD_TOO_LONG,
            ErrorCode.INVALID_VALUE,
        ),
    )
    async def signup(
        self, data: JSONBody[SignupRequest], auth_service: NamedDependency[TenantAuthService]
    ) -> UserOut:
        """Create a viewer account, where the tenant allows self-signup."""
        return await auth_service.signup(data.email, data.password)

    @post(
        "/login",
        opt={"zone": TENANT_PUBLIC},
        status_code=HTTP_200_OK,
        responses=problems(ErrorCode.INVALID_CREDENTIALS, ErrorCode.INVALID_VALUE),
    )
    async def login(
        self, data: JSONBody[LoginRequest], auth_service: NamedDependency[TenantAuthService]
    ) -> TokenResponse:
        """An access token and a refresh token for a user of this tenant."""
        return await auth_service.login(data.email, data.password)

    @post(
        "/refresh",
        opt={"zone": TENANT_PUBLIC},
        status_code=HTTP_200_OK,
        responses=problems(
            ErrorCode.INVALID_REFRESH_TOKEN, ErrorCode.REFRESH_TOKEN_REUSED, ErrorCode.INVALID_VALUE
        ),
    )
    async def refresh(
        self, data: JSONBody[RefreshRequest], auth_service: NamedDependency[TenantAuthService]
    ) -> TokenResponse:
        """Rotate: the old refresh token is spent; using it again revokes its whole family."""
        return await auth_service.refresh(data.refresh_token)

    @post("/logout", status_code=HTTP_204_NO_CONTENT)
    async def logout(
        self,
        request: Request[Principal, Any, Any],
        auth_service: NamedDependency[TenantAuthService],
        data: JSONBody[RefreshRequest | None] = None,
    ) -> None:
        """Revoke the given refresh token's sessions (all of the user's without a body)."""
        await auth_service.logout(request.user.id, data.refresh_token if data else None)

    @get("/me")
    async def me(
        self,
        request: Request[Principal, Any, Any],
        auth_service: NamedDependency[TenantAuthService],
    ) -> MeResponse:
        """The caller: user, role and tenant."""
        return await auth_service.me(request.user.id)


class PlatformAuthController(Controller):
    path = "/platform/v1/auth"
    tags = ["platform"]
    dependencies = {"auth_service": Provide(provide_platform_auth_service, sync_to_thread=False)}

    @post(
        "/login",
        opt={"zone": PLATFORM_PUBLIC},
        status_code=HTTP_200_OK,
        responses=problems(ErrorCode.INVALID_CREDENTIALS, ErrorCode.INVALID_VALUE),
    )
    async def login(
        self, data: JSONBody[LoginRequest], auth_service: NamedDependency[PlatformAuthService]
    ) -> TokenResponse:
        """An operator's access token for the `/platform` routes."""
        return await auth_service.login(data.email, data.password)
