DROP TRIGGER messages_raise_revision ON messages;
DROP FUNCTION raise_revision_of_message_owner();
DROP TRIGGER conversations_raise_revision ON conversations;
DROP FUNCTION raise_revision_of_conversation_owner();
