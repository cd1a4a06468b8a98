import pytest
from django.contrib.auth.models import User as StaffUser
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.better_auth import user_ids
from accounts.models import Account, Jwk
from tests.factories import SessionFactory, TaskFactory, UserFactory, better_auth_id

pytestmark = pytest.mark.django_db

SECRETS = {
    "session_token": "SESSION-TOKEN-SECRET-b1d9",
    "password": "PASSWORD-HASH-SECRET-7c2e",
    "access_token": "ACCESS-TOKEN-SECRET-4f0a",
    "refresh_token": "REFRESH-TOKEN-SECRET-9e31",
    "id_token": "ID-TOKEN-SECRET-55ab",
    "private_key": "PRIVATE-KEY-SECRET-e07c",
}
SECRET_COLUMNS = [
    '"session"."token"',
    '"account"."password"',
    '"account"."accessToken"',
    '"account"."refreshToken"',
    '"account"."idToken"',
    '"jwks"."privateKey"',
]
MODELS = ["user", "session", "account", "jwk"]


@pytest.fixture
def better_auth_rows(user):
    now = timezone.now()
    session = SessionFactory(user=user, token=SECRETS["session_token"])
    account = Account.objects.create(
        id=better_auth_id(),
        account_id=user.pk,
        provider_id="credential",
        user=user,
        password=SECRETS["password"],
        access_token=SECRETS["access_token"],
        refresh_token=SECRETS["refresh_token"],
        id_token=SECRETS["id_token"],
        created_at=now,
        updated_at=now,
    )
    jwk = Jwk.objects.create(
        id=better_auth_id(),
        public_key='{"kty":"OKP","crv":"Ed25519","x":"public-part"}',
        private_key=SECRETS["private_key"],
        created_at=now,
    )
    return {"user": user, "session": session, "account": account, "jwk": jwk}


def admin_urls(rows) -> list[str]:
    urls = []
    for name in MODELS:
        urls.append(reverse(f"admin:accounts_{name}_changelist"))
        urls.append(reverse(f"admin:accounts_{name}_change", args=[rows[name].pk]))
    return urls


def test_pages_render_and_never_show_secrets(admin_client, better_auth_rows):
    for url in admin_urls(better_auth_rows):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        for secret in SECRETS.values():
            assert secret not in html, f"{secret} on {url}"


def test_secrets_are_never_loaded(admin_client, better_auth_rows):
    with CaptureQueriesContext(connection) as queries:
        for url in admin_urls(better_auth_rows):
            assert admin_client.get(url).status_code == 200, url
    sql = "\n".join(query["sql"] for query in queries.captured_queries)
    for column in SECRET_COLUMNS:
        assert column not in sql


@pytest.mark.parametrize(
    ("model", "lookup"),
    [
        ("session", "token__startswith"),
        ("account", "password__startswith"),
        ("account", "access_token__contains"),
        ("jwk", "private_key__startswith"),
        ("user", "sessions__token__startswith"),
        ("user", "accounts__password__startswith"),
    ],
)
def test_secrets_cannot_be_probed_with_filters(admin_client, better_auth_rows, model, lookup):
    url = reverse(f"admin:accounts_{model}_changelist")
    response = admin_client.get(url, {lookup: SECRETS["session_token"][:3]})
    assert response.status_code == 400


@pytest.mark.parametrize("name", MODELS)
def test_better_auth_rows_are_read_only(admin_client, better_auth_rows, name):
    row = better_auth_rows[name]
    model = type(row)
    before = model.objects.count()
    add = reverse(f"admin:accounts_{name}_add")
    change = reverse(f"admin:accounts_{name}_change", args=[row.pk])
    delete = reverse(f"admin:accounts_{name}_delete", args=[row.pk])
    changelist = reverse(f"admin:accounts_{name}_changelist")

    assert admin_client.get(add).status_code == 403
    assert admin_client.post(add, {"id": "new"}).status_code == 403
    assert admin_client.post(change, {"id": row.pk}).status_code == 403
    assert admin_client.get(delete).status_code == 403
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    bulk_delete = {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"}
    admin_client.post(changelist, bulk_delete)
    assert model.objects.count() == before
    page = admin_client.get(change).content.decode()
    assert 'type="submit"' not in page.split('id="content-main"')[1].split("</form>")[0]


def test_user_page_links_to_their_tasks_with_a_count(admin_client, user, other_user):
    TaskFactory.create_batch(3, user=user)
    TaskFactory(user=other_user)
    response = admin_client.get(reverse("admin:accounts_user_change", args=[user.pk]))
    link = f"{reverse('admin:tasks_task_changelist')}?user__exact={user.pk}"
    assert f'<a href="{link}">3 tasks</a>' in response.content.decode()
    tasks = admin_client.get(link).context["cl"].result_list
    assert {task.user_id for task in tasks} == {user.pk}
    assert len(tasks) == 3


def test_users_are_searchable_by_email(admin_client):
    UserFactory(email="needle@example.com")
    UserFactory(email="hay@example.com")
    response = admin_client.get(reverse("admin:accounts_user_changelist"), {"q": "needle"})
    assert [u.email for u in response.context["cl"].result_list] == ["needle@example.com"]


def test_staff_sign_in_with_django_users_only(client, user):
    StaffUser.objects.create_superuser("staff", "staff@example.com", "correct horse battery")
    login = reverse("admin:login")
    refused = client.post(login, {"username": user.email, "password": "anything"})
    assert refused.status_code == 200  # the form again, with an error
    assert not refused.wsgi_request.user.is_authenticated
    accepted = client.post(login, {"username": "staff", "password": "correct horse battery"})
    assert accepted.status_code == 302


def test_search_terms_that_cannot_be_ids_do_not_search_uuid_ids(
    admin_client, better_auth_rows, monkeypatch
):
    # "user".id as uuid (generateId: "uuid"): `id = 'alice'` would be a database error.
    monkeypatch.setattr(user_ids, "sql_type", lambda connection: "uuid")
    url = reverse("admin:accounts_user_changelist")

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url, {"q": better_auth_rows["user"].email})

    assert response.status_code == 200
    assert better_auth_rows["user"].email in response.content.decode()
    assert not any('"user"."id" =' in query["sql"] for query in queries.captured_queries)
