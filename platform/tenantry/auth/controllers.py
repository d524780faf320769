from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from tenantry.auth.accounts import AccountService
from tenantry.auth.deps import (
    provide_account_service,
    provide_platform_auth_service,
    provide_tenant_auth_service,
)
from tenantry.auth.guards import requires_user
from tenantry.auth.principals import Principal
from tenantry.auth.schemas import (
    Accepted,
    AcceptInvitation,
    ChangePassword,
    ForgotPassword,
    LoginRequest,
    MePatch,
    MeResponse,
    RefreshRequest,
    ResetPassword,
    SignupRequest,
    TokenResponse,
)
from tenantry.auth.services import PlatformAuthService, TenantAuthService
from tenantry.lib.errors import ErrorCode
from tenantry.lib.openapi import problems
from tenantry.lib.zones import PLATFORM_PUBLIC, TENANT_PUBLIC

_ACCOUNTS = {"accounts": Provide(provide_account_service, sync_to_thread=False)}


class TenantAuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]
    dependencies = {"auth_service": Provide(provide_tenant_auth_service, sync_to_thread=False)}

    @post(
        "/signup",
        opt={"zone": TENANT_PUBLIC, "rate_bucket": "auth"},
        status_code=HTTP_202_ACCEPTED,
        responses=problems(
            ErrorCode.SIGNUP_DISABLED,
            ErrorCode.PASSWORD_TOO_SHORT,
            ErrorCode.PASSWORD_TOO_LONG,
            ErrorCode.INVALID_VALUE,
        ),
    )
    async def signup(
        self, data: JSONBody[SignupRequest], auth_service: NamedDependency[TenantAuthService]
    ) -> Accepted:
        """Create an account (the tenant's signup role), where the tenant allows self-signup.
        The answer is the same whether or not the email already has one: log in next."""
        await auth_service.signup(data.email, data.password)
        return Accepted()

    @post(
        "/login",
        opt={"zone": TENANT_PUBLIC, "rate_bucket": "auth"},
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

    @post("/logout", status_code=HTTP_204_NO_CONTENT, guards=[requires_user])
    async def logout(
        self,
        request: Request[Principal, Any, Any],
        auth_service: NamedDependency[TenantAuthService],
        data: JSONBody[RefreshRequest | None] = None,
    ) -> None:
        """Revoke the given refresh token's sessions (all of the user's without a body)."""
        await auth_service.logout(request.user.id, data.refresh_token if data else None)

    @get("/me", guards=[requires_user])
    async def me(
        self,
        request: Request[Principal, Any, Any],
        auth_service: NamedDependency[TenantAuthService],
    ) -> MeResponse:
        """The caller: user, role and tenant."""
        return await auth_service.me(request.user.id)

    @patch(
        "/me",
        guards=[requires_user],
        dependencies=_ACCOUNTS,
        responses=problems(ErrorCode.TOKEN_NOT_FOUND),
    )
    async def rename(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[MePatch],
        accounts: NamedDependency[AccountService],
    ) -> MeResponse:
        """The caller's display name."""
        return await accounts.rename(request.user.id, data.display_name)

    @post(
        "/password",
        status_code=HTTP_200_OK,
        guards=[requires_user],
        opt={"rate_bucket": "auth"},
        dependencies=_ACCOUNTS,
        responses=problems(
            ErrorCode.INVALID_PASSWORD,
            ErrorCode.PASSWORD_TOO_SHORT,
            ErrorCode.PASSWORD_TOO_LONG,
            ErrorCode.TOKEN_NOT_FOUND,
        ),
    )
    async def change_password(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[ChangePassword],
        accounts: NamedDependency[AccountService],
    ) -> TokenResponse:
        """A new password (the current one is needed): every other session of the user ends,
        and this answer carries the new tokens of this one."""
        return await accounts.change_password(
            request.user.id, data.current_password, data.new_password
        )

    @post(
        "/accept-invite",
        opt={"zone": TENANT_PUBLIC, "rate_bucket": "auth"},
        status_code=HTTP_200_OK,
        dependencies=_ACCOUNTS,
        responses=problems(
            ErrorCode.TOKEN_NOT_FOUND, ErrorCode.PASSWORD_TOO_SHORT, ErrorCode.PASSWORD_TOO_LONG
        ),
    )
    async def accept_invite(
        self, data: JSONBody[AcceptInvitation], accounts: NamedDependency[AccountService]
    ) -> TokenResponse:
        """An invited user sets their password (once, within 7 days) and is signed in."""
        return await accounts.accept_invitation(data.token, data.password)

    @post(
        "/forgot-password",
        opt={"zone": TENANT_PUBLIC, "rate_bucket": "auth"},
        status_code=HTTP_202_ACCEPTED,
        dependencies=_ACCOUNTS,
    )
    async def forgot_password(
        self, data: JSONBody[ForgotPassword], accounts: NamedDependency[AccountService]
    ) -> Accepted:
        """Mails a reset token if the email has an account; the answer never tells."""
        await accounts.forgot_password(data.email)
        return Accepted()

    @post(
        "/reset-password",
        opt={"zone": TENANT_PUBLIC, "rate_bucket": "auth"},
        status_code=HTTP_204_NO_CONTENT,
        dependencies=_ACCOUNTS,
        responses=problems(
            ErrorCode.TOKEN_NOT_FOUND, ErrorCode.PASSWORD_TOO_SHORT, ErrorCode.PASSWORD_TOO_LONG
        ),
    )
    async def reset_password(
        self, data: JSONBody[ResetPassword], accounts: NamedDependency[AccountService]
    ) -> None:
        """A new password with a reset token (once, within an hour); every session ends."""
        await accounts.reset_password(data.token, data.password)


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
